import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { generateNodeKey } from '../src/crypto/keys.js'
import { createSigner, type Signer } from '../src/crypto/sign.js'
import { jobEntryRules } from '../src/jobs/bodies.js'
import { EntryCodec, type DecodedEntry } from '../src/ledger/entry.js'
import { foldMembership, leastFixedPoint, VouchBook, type MeshDefinition } from '../src/membership/index.js'
import { median, round } from './stats.js'

/**
 * Membership at the scale of a large mesh: `members` keys admitted one by one
 * (each by `admit` vouches of earlier members, from 3 founders), plus
 * `strangerVouches` vouches by keys that are not members. Figures:
 * - the pure fold (`foldMembership`, what `audit` runs) over every entry,
 *   beside decoding the same lines without signature checks;
 * - one recomputation of the least fixed point from the live index (what a
 *   node does when a member's vouch or unvouch arrives);
 * - the index's memory per (voucher, key) record.
 */
export async function benchMembership (options: { members?: number, strangerVouches?: number, rounds?: number } = {}): Promise<Record<string, unknown>> {
  const memberCount = options.members ?? 1000
  const strangerVouches = options.strangerVouches ?? 20_000
  const rounds = options.rounds ?? 5
  const admit = 2
  const codec = new EntryCodec(jobEntryRules)
  const keys: Signer[] = Array.from({ length: memberCount }, () => createSigner(generateNodeKey()))
  const chains = new Map<Signer, { seq: number, prev: string | null }>()
  const write = (signer: Signer, member: string): DecodedEntry => {
    const chain = chains.get(signer) ?? { seq: 0, prev: null }
    const made = codec.create(signer, { seq: chain.seq, prev: chain.prev, clock: chain.seq, time: 1_700_000_000_000, type: 'vouch', body: { member } })
    chains.set(signer, { seq: chain.seq + 1, prev: made.id })
    return made
  }
  const definition: MeshDefinition = { v: 1, name: 'bench', founders: keys.slice(0, 3).map((k) => k.publicHex), admit }
  const entries: DecodedEntry[] = []
  let state = 12345
  const random = (n: number): number => { state = (state * 1103515245 + 12345) % 2147483648; return state % n }
  for (let i = 3; i < memberCount; i++) {
    const chosen = new Set<number>()
    while (chosen.size < admit) chosen.add(random(i))
    for (const voucher of chosen) entries.push(write(keys[voucher]!, keys[i]!.publicHex))
  }
  const strangers: Signer[] = Array.from({ length: 200 }, () => createSigner(generateNodeKey()))
  for (let i = 0; i < strangerVouches; i++) entries.push(write(strangers[i % strangers.length]!, keys[random(memberCount)]!.publicHex))
  const lines = entries.map((e) => e.line)

  const foldMs: number[] = []
  const decodeMs: number[] = []
  let members = 0
  for (let r = 0; r < rounds; r++) {
    let started = performance.now()
    const decoded = lines.map((line) => codec.decode(line, { verify: false }))
    decodeMs.push(performance.now() - started)
    started = performance.now()
    members = foldMembership(definition, decoded).members.length
    foldMs.push(performance.now() - started)
  }

  const book = new VouchBook()
  const sorted = [...entries].sort((a, b) => (a.entry.author < b.entry.author ? -1 : a.entry.author > b.entry.author ? 1 : a.entry.seq - b.entry.seq))
  for (const e of sorted) book.add(e.entry.author, e.entry.seq, (e.entry.body as { member: string }).member, true)
  const recomputeMs: number[] = []
  for (let r = 0; r < rounds * 4; r++) {
    const started = performance.now()
    leastFixedPoint(definition, book, new Map())
    recomputeMs.push(performance.now() - started)
  }

  // Memory of the index: a book of 100,000 records, the heap with it and once it is dropped.
  const gc = (globalThis as { gc?: () => void }).gc
  const settle = (): number => { for (let i = 0; i < 3; i++) gc?.(); return process.memoryUsage().heapUsed }
  // The book lives only inside fill(): once it returns, nothing holds it and the next settle() can collect it.
  const fill = (): { records: number, withBook: number } => {
    const big = new VouchBook()
    for (let i = 0; i < 100_000; i++) big.add(`a${i % 1000}`.padEnd(64, '0'), Math.floor(i / 1000), `k${i}`.padEnd(64, '0'), true)
    return { records: big.size, withBook: settle() }
  }
  const { records, withBook } = fill()
  const bytesPerRecord = (withBook - settle()) / records

  return {
    bench: 'membership',
    members: memberCount,
    admit,
    entries: entries.length,
    strangerVouches,
    counted: members,
    foldMs: round(median(foldMs), 1),
    decodeBaselineMs: round(median(decodeMs), 1),
    ratio: round(median(foldMs) / median(decodeMs), 2),
    recomputeMs: round(median(recomputeMs), 2),
    indexBytesPerRecord: Math.round(bytesPerRecord),
    note: `fold = foldMembership over every vouch (what audit runs); baseline = decoding the same lines without signature checks; recompute = one least fixed point from the live index (a node, per member vouch or unvouch); memory measured ${gc === undefined ? 'without --expose-gc (approximate)' : 'with gc'}`
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${JSON.stringify(await benchMembership())}\n`)
  process.exit(0)
}
