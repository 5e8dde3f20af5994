import { describe, expect, it } from 'vitest'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { createSigner } from '../../src/crypto/sign.js'
import { EntryCodec, unsignedOf, type EntryTypeRules } from '../../src/ledger/entry.js'
import { MAX_ENTRY_BYTES } from '../../src/ledger/constants.js'

const rules: EntryTypeRules = {
  note: {
    validate (body) {
      if (typeof (body as { text?: unknown }).text !== 'string') throw new Error('text must be a string')
    }
  }
}
const codec = new EntryCodec(rules)
const signer = createSigner(generateNodeKey())

function make (seq = 0, prev: string | null = null, body: Record<string, unknown> = { text: 'hi' }) {
  return codec.create(signer, { seq, prev, clock: seq, time: 1_700_000_000_000, type: 'note', body })
}

describe('entry codec', () => {
  it('round-trips: decode(create(x)) has the same id and line', () => {
    const made = make()
    const decoded = codec.decode(made.line)
    expect(decoded.id).toBe(made.id)
    expect(decoded.line).toBe(made.line)
    expect(decoded.entry.author).toBe(signer.publicHex)
  })

  it('derives the unsigned bytes even when the body has a member named sig', () => {
    const made = make(0, null, { text: 'x', sig: 'nested', z: { sig: ',"sig":"' } })
    const decoded = codec.decode(made.line)
    expect(decoded.id).toBe(made.id)
    expect(unsignedOf(made.line)).not.toContain(made.entry.sig)
  })

  it('rejects every single-byte change of a line', () => {
    const { line } = make(3, 'a'.repeat(64))
    for (let i = 0; i < line.length; i++) {
      const changed = line.slice(0, i) + (line[i] === 'a' ? 'b' : 'a') + line.slice(i + 1)
      if (changed === line) continue
      expect(() => codec.decode(changed), `byte ${i}`).toThrow()
    }
  })

  it('names the reason: shape, type, body, canonical form, size, signature', () => {
    const { line, entry } = make()
    const reason = (text: string): string => {
      try { codec.decode(text); return 'accepted' } catch (err) { return (err as { reason: string }).reason }
    }
    expect(reason('{')).toBe('not-json')
    expect(reason(JSON.stringify({ ...entry, seq: 1 }))).toBe('bad-shape')
    expect(reason(JSON.stringify({ ...entry, extra: 1 }))).toBe('bad-shape')
    expect(reason(JSON.stringify({ ...entry, seq: 1.5 }))).toBe('bad-shape')
    expect(reason(line.replace('"type":"note"', '"type":"nope"'))).toBe('unknown-type')
    expect(reason(line.replace('"text":"hi"', '"text":1'))).toBe('bad-body')
    expect(reason(` ${line}`)).toBe('not-canonical')
    expect(reason(line.replace('"text":"hi"', '"text":"ho"'))).toBe('bad-signature')
    expect(reason('x'.repeat(MAX_ENTRY_BYTES + 1))).toBe('too-large')
  })

  it('refuses to create an entry over the size limit or with a float', () => {
    expect(() => make(0, null, { text: 'x'.repeat(MAX_ENTRY_BYTES) })).toThrow(/limit/)
    expect(() => make(0, null, { text: 'x', n: 0.5 })).toThrow(/integers/)
  })
})
