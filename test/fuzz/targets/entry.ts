import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { nodeKeyFromSeed } from '../../../src/crypto/keys.js'
import { createSigner } from '../../../src/crypto/sign.js'
import { jobEntryRules } from '../../../src/jobs/index.js'
import { EntryCodec, type EntryBody } from '../../../src/ledger/entry.js'
import { canonicalJson } from '../../../src/util/canonical-json.js'
import { mutate, mutationsArb, onlyThrows, runs } from '../kit.js'

/** The entry decoder (EntryCodec.decode with the jobs layer's rules) on hostile input. */

const codec = new EntryCodec(jobEntryRules)
const ALLOWED = ['InvalidEntryError']
const sha = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Valid entry lines of every type, each signed: the seeds that mutations start from. */
export function validEntryLines (): string[] {
  // A fixed key: a fuzz seed replays the same signed lines.
  const signer = createSigner(nodeKeyFromSeed(new Uint8Array(32).fill(7)))
  const bodies: Array<[string, EntryBody]> = [
    ['job', {
      name: 'hello', source: sha('src'), sourceSize: 1000, steps: [{ name: 'build', run: 'make && make test' }],
      platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 2 }], artifacts: ['dist/*'], independent: ['dist/*.tar.gz'],
      timeout: 600, limits: { memoryMb: 512 }, network: false, root: false
    }],
    ['claim', { job: sha('job'), platform: 'linux-x64', lease: 1_800_000_000_000 }],
    ['result', {
      job: sha('job'), platform: 'linux-x64', status: 'pass', steps: [{ name: 'build', exit: 0, ms: 1000 }], log: sha('log'), logSize: 3,
      artifacts: [{ path: 'dist/a.whl', sha256: sha('a'), size: 10 }], env: { os: 'linux', kernel: '6.1', arch: 'x64', sandbox: 'bubblewrap 0.8.0', tools: {} },
      start: 1, end: 2
    }],
    ['cancel', { job: sha('job'), reason: 'superseded' }],
    ['revoke', {}]
  ]
  let prev: string | null = null
  return bodies.map(([type, body], seq) => {
    const made = codec.create(signer, { seq, prev, clock: seq + 1, time: 1_767_225_600_000 + seq, type, body })
    prev = made.id
    return made.line
  })
}

/** Replace, delete or add a member somewhere in a parsed entry (envelope or body, any depth). */
type Edit = { path: number[], action: 'replace' | 'delete' | 'add', key: string, value: unknown }

const editArb: fc.Arbitrary<Edit> = fc.record({
  path: fc.array(fc.nat(), { maxLength: 4 }),
  action: fc.constantFrom('replace' as const, 'delete' as const, 'add' as const),
  key: fc.oneof(fc.constantFrom('v', 'author', 'seq', 'prev', 'clock', 'time', 'type', 'body', 'sig', 'job', 'platform', 'status', '__proto__', 'constructor'), fc.string({ maxLength: 6 })),
  value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(-1, 2 ** 53, 1.5, '', 'x'.repeat(70_000), null, true, [], {}))
})

function applyEdit (root: unknown, edit: Edit): void {
  let here = root
  for (const step of edit.path) {
    if (here === null || typeof here !== 'object') break
    const keys = Object.keys(here)
    if (keys.length === 0) break
    const next = (here as Record<string, unknown>)[keys[step % keys.length]!]
    if (next === null || typeof next !== 'object') break
    here = next
  }
  if (here === null || typeof here !== 'object') return
  const target = here as Record<string, unknown>
  const keys = Object.keys(target)
  if (edit.action === 'add' || keys.length === 0) {
    Object.defineProperty(target, edit.key, { value: edit.value, enumerable: true, configurable: true, writable: true })
    return
  }
  const key = keys[edit.path.length % keys.length]!
  if (edit.action === 'delete') delete target[key]
  else target[key] = edit.value
}

export function fuzzEntryDecoder (scale?: number): number {
  const seeds = validEntryLines()
  const encoder = new TextEncoder()
  let cases = 0

  // Arbitrary text and bytes: never anything but InvalidEntryError.
  fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), fc.json({ maxDepth: 4 })), (input) => {
    cases++
    onlyThrows(ALLOWED, () => codec.decode(input))
  }), { numRuns: runs(4000, scale) })

  // Byte mutations of valid lines: a line that still decodes must be the original, byte for byte.
  fc.assert(fc.property(fc.constantFrom(...seeds), mutationsArb, fc.boolean(), (seed, mutations, asBytes) => {
    cases++
    const mutated = mutate(encoder.encode(seed), mutations)
    const decoded = onlyThrows(ALLOWED, () => codec.decode(asBytes ? mutated : Buffer.from(mutated).toString('utf8')))
    if (decoded !== undefined && decoded.line !== seed) throw new Error(`a mutated line decoded as a different entry: ${decoded.line}`)
  }), { numRuns: runs(8000, scale) })

  // Structural edits, re-serialised canonically, with and without the signature check.
  fc.assert(fc.property(fc.constantFrom(...seeds), fc.array(editArb, { minLength: 1, maxLength: 3 }), fc.boolean(), (seed, edits, verify) => {
    cases++
    const value = JSON.parse(seed) as unknown
    for (const edit of edits) applyEdit(value, edit)
    let line: string
    try {
      line = canonicalJson(value)
    } catch {
      return
    }
    const decoded = onlyThrows(ALLOWED, () => codec.decode(line, { verify }))
    if (verify && decoded !== undefined && decoded.line !== seed) throw new Error(`an edited entry passed the signature check: ${decoded.line}`)
  }), { numRuns: runs(5000, scale) })

  // Deep nesting inside and around the body: bounded depth, never a stack overflow.
  fc.assert(fc.property(fc.integer({ min: 1, max: 30_000 }), fc.constantFrom('[', '{"a":'), fc.boolean(), (depth, open, inBody) => {
    cases++
    const close = open === '[' ? ']' : '}'
    const nest = `${open.repeat(depth)}1${close.repeat(depth)}`
    const line = inBody ? seeds[3]!.replace('"reason":"superseded"', `"reason":${nest}`) : nest
    onlyThrows(ALLOWED, () => codec.decode(line))
  }), { numRuns: runs(300, scale) })
  return cases
}
