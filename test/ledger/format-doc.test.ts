import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import nacl from 'tweetnacl'
import { describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { nodeKeyFromSeed } from '../../src/crypto/keys.js'
import { createSigner, verifySignatureNacl } from '../../src/crypto/sign.js'
import { JOB_ENTRY_SCHEMAS, jobEntryRules, pollBodySchema, unwatchBodySchema, watchBodySchema } from '../../src/jobs/bodies.js'
import { ALL_STRANGERS_QUOTA, MEMBER_QUOTA, RELAY_QUOTA, STRANGER_QUOTA, type Quota } from '../../src/ledger/admission/constants.js'
import { auditLines } from '../../src/ledger/audit.js'
import { MAX_ADOPTED_AHEAD_MS, MAX_FUTURE_MS, SIGNATURE_DOMAIN } from '../../src/ledger/constants.js'
import { EntryCodec, signedMessage, unsignedOf, type UnsignedEntry } from '../../src/ledger/entry.js'
import { MAX_BYTES_PER_SESSION, MAX_ENTRIES_PER_SESSION } from '../../src/ledger/sync/constants.js'
import { vouchBodySchema } from '../../src/membership/bodies.js'
import { auditExport } from '../../src/node/cli/audit.js'
import { packageRoot } from '../../src/util/package-root.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { jobBody, resultBody } from '../jobs/helpers.js'

/** The worked example uses the job system's real types: what a node writes and `audit` reads. */
const testCodec = new EntryCodec(jobEntryRules)
const FORMAT = readFileSync(join(packageRoot(), 'docs', 'FORMAT.md'), 'utf8')

/** The labelled blocks of docs/FORMAT.md's worked example: `<!-- example: name -->` then a fenced block. */
function examples (): Map<string, string> {
  const found = new Map<string, string>()
  for (const match of FORMAT.matchAll(/<!-- example: ([a-z0-9-]+) -->\n```[a-z]*\n([\s\S]*?)\n```/g)) found.set(match[1]!, match[2]!)
  return found
}

describe('docs/FORMAT.md worked example', () => {
  const teardown = useTeardown()
  const doc = examples()
  const block = (name: string): string => {
    const value = doc.get(name)
    if (value === undefined) throw new Error(`FORMAT.md has no example block "${name}"`)
    return value
  }

  it('states the size of the first unsigned entry correctly', () => {
    const stated = /Unsigned bytes \(one line, no trailing line feed; (\d+) bytes\)/.exec(FORMAT)
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

  it('the second entry links to the first, and the documented export audits as valid: a job, cancelled', async () => {
    expect(testCodec.decode(block('entry-1-line')).entry.prev).toBe(block('entry-0-id'))
    const lines = block('export').split('\n')
    expect(lines).toEqual([block('entry-0-line'), block('entry-1-line')])
    const report = await auditLines(lines, testCodec)
    expect(report).toMatchObject({ valid: true, entries: 2, problemCount: 0 })
    const file = join(await tempDir(teardown, 'buildhaus-format-'), 'export.ndjson')
    await writeFile(file, `${lines.join('\n')}\n`)
    const full = await auditExport(file)
    expect(full.log.valid).toBe(true)
    expect(full.jobs.map((j) => [j.id, j.verdict])).toEqual([[block('entry-0-id'), 'cancelled']])
  })
})

/** One row of a § 8 schema table. */
interface DocRow { path: string, type: string, required: boolean, bounds: string, rule: string }

function schemaTable (type: string): DocRow[] {
  const at = FORMAT.indexOf(`<!-- schema: ${type} -->`)
  if (at < 0) throw new Error(`FORMAT.md has no schema table for ${type}`)
  const rows: DocRow[] = []
  for (const line of FORMAT.slice(at).split('\n').slice(3)) {
    if (!line.startsWith('|')) break
    const cells = line.split('|').slice(1, -1).map((c) => c.trim())
    rows.push({ path: cells[0]!.replace(/`/g, ''), type: cells[1]!, required: cells[2] === 'yes', bounds: cells[3]!, rule: cells[4]! })
  }
  return rows
}

/** What the code says of one member: its JSON type, whether it is required, its bounds as the doc writes them. */
interface CodeRow { type: string, required: boolean, bounds?: string }

/** The members of zod's internal definitions this test reads (zod 4's `_zod.def`); each is present only for some kinds. */
interface SchemaDef {
  type: string
  checks?: Array<{ _zod: { def: CheckDef } }>
  innerType: AnySchema
  shape: Record<string, AnySchema>
  element: AnySchema
  keyType: AnySchema
  valueType: AnySchema
}
interface CheckDef { check: string, minimum?: number, maximum?: number, value?: unknown, inclusive?: boolean }
type AnySchema = z.ZodType & { _zod: { def: SchemaDef } }

function boundsOf (schema: AnySchema): string | undefined {
  const def = schema._zod.def
  let min: number | undefined
  let max: number | undefined
  for (const check of def.checks ?? []) {
    const c = check._zod.def
    if (c.check === 'min_length') min = c.minimum
    if (c.check === 'max_length') max = c.maximum
    if (c.check === 'greater_than') min = c.inclusive === true ? Number(c.value) : Number(c.value) + 1
    if (c.check === 'less_than') max = c.inclusive === true ? Number(c.value) : Number(c.value) - 1
  }
  if (min === undefined && max === undefined) return undefined
  if (max === undefined) return `≥ ${min!}`
  return `${min ?? 0}–${max}`
}

/** Flatten a body schema into the doc's paths: `a.b`, `a[]`, `a.<key>`, `a.*`. */
function flatten (schema: AnySchema, path: string, required: boolean, out: Map<string, CodeRow>): void {
  const def = schema._zod.def
  switch (def.type) {
    case 'optional':
      flatten(def.innerType, path, false, out)
      return
    case 'nullable': {
      const inner = new Map<string, CodeRow>()
      flatten(def.innerType, path, required, inner)
      for (const [p, row] of inner) out.set(p, p === path ? { ...row, type: `${row.type} or null` } : row)
      return
    }
    case 'object':
      if (path !== '') out.set(path, { type: 'object', required })
      for (const [name, member] of Object.entries(def.shape)) flatten(member, path === '' ? name : `${path}.${name}`, true, out)
      return
    case 'array': {
      const bounds = boundsOf(schema)
      out.set(path, { type: 'array', required, ...(bounds !== undefined ? { bounds } : {}) })
      flatten(def.element, `${path}[]`, true, out)
      return
    }
    case 'record':
      out.set(path, { type: 'object', required })
      flatten(def.keyType, `${path}.<key>`, true, out)
      flatten(def.valueType, `${path}.*`, true, out)
      return
    default: {
      const type = def.type === 'number' ? 'integer' : def.type === 'enum' ? 'string' : def.type
      const bounds = boundsOf(schema)
      out.set(path, { type, required, ...(bounds !== undefined ? { bounds } : {}) })
    }
  }
}

/** Every type the job system's rules define, with its body schema. */
const SCHEMAS: Record<string, unknown> = { ...JOB_ENTRY_SCHEMAS, watch: watchBodySchema, unwatch: unwatchBodySchema, poll: pollBodySchema, vouch: vouchBodySchema, unvouch: vouchBodySchema }

describe('docs/FORMAT.md § 8 states every body rule the code enforces', () => {
  it('documents every type the rules define, and no other', () => {
    expect(Object.keys(SCHEMAS).sort()).toEqual(Object.keys(jobEntryRules).sort())
    for (const type of Object.keys(jobEntryRules)) expect(FORMAT).toContain(`<!-- schema: ${type} -->`)
  })

  for (const [type, schema] of Object.entries(SCHEMAS)) {
    it(`${type}: the same members, required or not, JSON types and bounds`, () => {
      const code = new Map<string, CodeRow>()
      flatten(schema as unknown as AnySchema, '', true, code)
      const doc = schemaTable(type)
      expect(doc.map((r) => r.path).sort()).toEqual([...code.keys()].sort())
      for (const row of doc) {
        const want = code.get(row.path)!
        expect({ path: row.path, type: row.type, required: row.required }).toEqual({ path: row.path, type: want.type, required: want.required })
        // Bounds the code states as checks must be the document's (records and hashes state theirs in words).
        if (want.bounds !== undefined) expect(`${row.path}: ${row.bounds}`).toBe(`${row.path}: ${want.bounds}`)
      }
    })
  }

  it('the status values are the code\'s', () => {
    const status = schemaTable('result').find((r) => r.path === 'status')!
    for (const value of JOB_ENTRY_SCHEMAS.result.shape.status.options) expect(status.rule).toContain(`\`${value}\``)
  })

  it('every body § 8.11 says is refused is refused by the code, and the same body without the fault is accepted', () => {
    const bases: Record<string, Record<string, unknown>> = {
      job: jobBody() as unknown as Record<string, unknown>,
      result: resultBody('a'.repeat(64)) as unknown as Record<string, unknown>,
      diagnosis: { job: 'a'.repeat(64), platform: 'linux-x64', report: 'b'.repeat(64), summary: 'they differ', builders: ['c'.repeat(64)], files: [] }
    }
    const refused = [...FORMAT.matchAll(/<!-- refused: (\w+) (\S+) (.+) -->/g)]
    expect(refused.length).toBeGreaterThanOrEqual(10)
    for (const [, type, path, value] of refused) {
      const base = bases[type!]!
      expect(() => jobEntryRules[type!]!.validate(base), `${type} base`).not.toThrow()
      const body = structuredClone(base)
      setPath(body, path!, JSON.parse(value!))
      expect(() => jobEntryRules[type!]!.validate(body), `${type} ${path} = ${value}`).toThrow()
    }
  })

  it('the quotas, clock bounds and session bounds in § 5, § 10 and § 11 are the constants', () => {
    const row = (name: string, quota: Quota): void => {
      const mib = (bytes: number): string => `${bytes / (1024 * 1024)} MiB`
      const kib = (bytes: number): string => `${bytes / 1024} KiB/s`
      const line = FORMAT.split('\n').find((l) => l.includes(`(\`${name}\`)`))
      expect(line, name).toBeDefined()
      expect(line).toContain(`${quota.entries.toLocaleString('en-US')} entries, ${mib(quota.bytes)}`)
      expect(line).toContain(`${quota.entriesPerSecond} entries/s, ${kib(quota.bytesPerSecond)}`)
    }
    row('MEMBER_QUOTA', MEMBER_QUOTA)
    row('STRANGER_QUOTA', STRANGER_QUOTA)
    row('ALL_STRANGERS_QUOTA', ALL_STRANGERS_QUOTA)
    row('RELAY_QUOTA', RELAY_QUOTA)
    expect(FORMAT).toContain(`more than **${MAX_FUTURE_MS / 60_000} minutes**`)
    expect(FORMAT).toContain(`up to **${MAX_ADOPTED_AHEAD_MS / 60_000} minute**`)
    expect(FORMAT).toContain(`${MAX_ENTRIES_PER_SESSION.toLocaleString('en-US')} entries or ${MAX_BYTES_PER_SESSION / (1024 * 1024)} MiB of lines`)
  })
})

/** Set `a.b[0].c`-style paths (`steps[0].name`, `env.tools`) in a plain object. */
function setPath (target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '')
  // Objects and arrays alike are indexed by string keys ('0' is an array's first element).
  let at = target
  for (const part of parts.slice(0, -1)) at = at[part] as Record<string, unknown>
  at[parts[parts.length - 1]!] = value
}
