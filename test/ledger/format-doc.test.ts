import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import nacl from 'tweetnacl'
import { describe, expect, it } from 'vitest'
import { nodeKeyFromSeed } from '../../src/crypto/keys.js'
import { createSigner, verifySignatureNacl } from '../../src/crypto/sign.js'
import { auditLines } from '../../src/ledger/audit.js'
import { SIGNATURE_DOMAIN } from '../../src/ledger/constants.js'
import { signedMessage, unsignedOf, type UnsignedEntry } from '../../src/ledger/entry.js'
import { packageRoot } from '../../src/util/package-root.js'
import { testCodec } from './helpers.js'

/** The labelled blocks of docs/FORMAT.md's worked example: `<!-- example: name -->` then a fenced block. */
function examples (): Map<string, string> {
  const text = readFileSync(join(packageRoot(), 'docs', 'FORMAT.md'), 'utf8')
  const found = new Map<string, string>()
  for (const match of text.matchAll(/<!-- example: ([a-z0-9-]+) -->\n```[a-z]*\n([\s\S]*?)\n```/g)) found.set(match[1]!, match[2]!)
  return found
}

describe('docs/FORMAT.md worked example', () => {
  const doc = examples()
  const block = (name: string): string => {
    const value = doc.get(name)
    if (value === undefined) throw new Error(`FORMAT.md has no example block "${name}"`)
    return value
  }

  it('states the size of the first unsigned entry correctly', () => {
    const stated = /Unsigned bytes \(one line, no trailing line feed; (\d+) bytes\)/.exec(readFileSync(join(packageRoot(), 'docs', 'FORMAT.md'), 'utf8'))
    expect(Number(stated?.[1])).toBe(Buffer.byteLength(block('entry-0-unsigned')))
  })

  it('names the key by its seed, and the public key is right', () => {
    const key = nodeKeyFromSeed(Buffer.from(block('seed'), 'hex'))
    expect(key.publicHex).toBe(block('author'))
  })

  for (const n of [0, 1]) {
    it(`entry ${n}: unsigned bytes, id, signing input, signature and line match the code byte for byte`, () => {
      const signer = createSigner(nodeKeyFromSeed(Buffer.from(block('seed'), 'hex')))
      const unsigned = block(`entry-${n}-unsigned`)
      const line = block(`entry-${n}-line`)
      const id = block(`entry-${n}-id`)

      // What the document says, computed independently of the codec.
      expect(createHash('sha256').update(Buffer.from(unsigned, 'utf8')).digest('hex')).toBe(id)
      expect(Buffer.concat([Buffer.from(SIGNATURE_DOMAIN, 'ascii'), Buffer.from(id, 'hex')]).toString('hex')).toBe(block(`entry-${n}-signing-input`))
      const signingInput = Buffer.from(block(`entry-${n}-signing-input`), 'hex')
      expect(signingInput).toHaveLength(51)
      const sig = Buffer.from(block(`entry-${n}-sig`), 'hex')
      expect(Buffer.from(nacl.sign.detached(signingInput, nacl.sign.keyPair.fromSeed(Buffer.from(block('seed'), 'hex')).secretKey)).toString('hex')).toBe(block(`entry-${n}-sig`))
      expect(verifySignatureNacl(Buffer.from(block('author'), 'hex'), signingInput, sig)).toBe(true)

      // The code agrees: decoding the documented line, and building the entry afresh.
      const decoded = testCodec.decode(line)
      expect(decoded.id).toBe(id)
      expect(unsignedOf(line)).toBe(unsigned)
      expect(Buffer.from(signedMessage(id)).equals(signingInput)).toBe(true)
      const fields = JSON.parse(unsigned) as UnsignedEntry
      const made = testCodec.create(signer, { seq: fields.seq, prev: fields.prev, clock: fields.clock, time: fields.time, type: fields.type, body: fields.body })
      expect(made.line).toBe(line)
      expect(made.id).toBe(id)
      expect(made.entry.sig).toBe(block(`entry-${n}-sig`))
    })
  }

  it('the second entry links to the first, and the documented export audits as valid', async () => {
    expect(testCodec.decode(block('entry-1-line')).entry.prev).toBe(block('entry-0-id'))
    const lines = block('export').split('\n')
    expect(lines).toEqual([block('entry-0-line'), block('entry-1-line')])
    const report = await auditLines(lines, testCodec)
    expect(report).toMatchObject({ valid: true, entries: 2, problemCount: 0 })
  })
})
