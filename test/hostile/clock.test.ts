import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { jobEntryRules } from '../../src/jobs/index.js'
import { MAX_ADOPTED_AHEAD_MS, MAX_FUTURE_MS } from '../../src/ledger/constants.js'
import { Admission } from '../../src/ledger/admission/index.js'
import { EntryCodec, type DecodedEntry } from '../../src/ledger/entry.js'
import { LedgerStore } from '../../src/ledger/store.js'
import { waitFor } from '../../src/util/wait.js'
import { startCluster, waitForMesh } from '../helpers/cluster.js'
import { sortJobDir } from '../helpers/job-dir.js'
import { hostilePeer, throwawayAuthor, type ForgedEntry } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { jobBody } from '../jobs/helpers.js'
import { newSigner, openTestStore, testCodec } from '../ledger/helpers.js'
import { connect, startNode } from '../ledger/mesh.js'

/**
 * Issue 12, attack 2: one entry with clock 2^53-1 and time 8.64e15 from an
 * unknown key was accepted by every node, and every honest entry after it
 * carried that clock. Now: an entry whose time or clock is more than
 * MAX_FUTURE_MS ahead is refused (for now); a chain's clock must rise; and a
 * node adopts a clock from what it stores at most MAX_ADOPTED_AHEAD_MS past
 * its own wall clock (a hybrid logical clock). Honest history, however old
 * and in whatever order it arrives, is never refused.
 */

const codec = new EntryCodec(jobEntryRules)
const body = (name: string): Record<string, unknown> => jobBody({ name }) as unknown as Record<string, unknown>

describe('attack 2: a stranger freezes the mesh clock', { timeout: 180_000 }, () => {
  const teardown = useTeardown()

  it('every node refuses clock 2^53-1 / time 8.64e15 from a stranger (gossip and sync); honest clocks stay at the wall clock; a clock a few minutes ahead is stored but not adopted', async () => {
    const nodes = await startCluster(teardown, { size: 2, args: ['--slots', '0'] })
    await waitForMesh(nodes)
    const peer = await hostilePeer(teardown)
    for (const node of nodes) await peer.connect(node.address)

    const frozen = throwawayAuthor().next({ clock: Number.MAX_SAFE_INTEGER, time: 8.64e15, type: 'job', body: body('the end of time') })
    const lateClock = throwawayAuthor().next({ clock: Number.MAX_SAFE_INTEGER, time: Date.now(), type: 'job', body: body('honest time, frozen clock') })
    // Within MAX_FUTURE_MS: stored, but nobody's clock may follow it further than MAX_ADOPTED_AHEAD_MS.
    const ahead = throwawayAuthor().next({ clock: Date.now() + 5 * 60_000, time: Date.now(), type: 'job', body: body('five minutes ahead') })
    for (const entry of [frozen, lateClock, ahead]) await peer.publishEntry(entry)
    const pushed = await peer.pushBySync(nodes[1]!.address, [frozen.line, lateClock.line])
    // Too far ahead is "not now", not hostility: the session is not cut off.
    expect(pushed.aborted).toBe(false)

    const stored = async (entry: ForgedEntry): Promise<boolean[]> => await Promise.all(nodes.map(async (n) => (await fetch(new URL(`/api/jobs/${entry.id}`, n.apiUrl))).ok))
    await waitFor(async () => (await stored(ahead)).every(Boolean), { timeoutMs: 20_000, intervalMs: 250, what: 'both nodes to store the job five minutes ahead' })
    expect(await stored(frozen)).toEqual([false, false])
    expect(await stored(lateClock)).toEqual([false, false])

    // An honest job submitted now carries the wall clock, not 2^53-1 (and not the job five minutes ahead).
    const scratch = await tempDir(teardown, 'buildhaus-clock-')
    const before = Date.now()
    const job = await nodes[0]!.submit(await sortJobDir(scratch, { name: 'honest after the attack' }))
    expect(job.clock).toBeGreaterThanOrEqual(before)
    expect(job.clock).toBeLessThanOrEqual(Date.now() + MAX_ADOPTED_AHEAD_MS + 1_000)
    expect(job.clock).toBeLessThan(ahead.entry.clock as number)
    // …and the other node takes it.
    await waitFor(async () => (await fetch(new URL(`/api/jobs/${job.id}`, nodes[1]!.apiUrl))).ok, { timeoutMs: 20_000, intervalMs: 250, what: 'the other node to store the honest job' })
  })

  it('a chain\'s clock must rise: a store refuses an entry whose clock is not above its predecessor\'s, in order or out of order', async () => {
    const store = await openTestStore(teardown)
    const author = throwawayAuthor()
    const first = author.next({ clock: 100, time: 1_700_000_000_000, type: 'note', body: { text: 'a' } })
    const same = author.next({ clock: 100, time: 1_700_000_000_001, type: 'note', body: { text: 'b' } })
    const report = await store.ingest([first.line, same.line])
    expect(report.accepted.map((e) => e.id)).toEqual([first.id])
    expect(report.rejected.map((r) => r.reason)).toEqual(['clock-not-rising'])
    // Out of order: the later entry waits for its predecessor, then is dropped, not stored.
    const other = throwawayAuthor()
    const a = other.next({ clock: 7, time: 1_700_000_000_000, type: 'note', body: { text: 'a' } })
    const b = other.next({ clock: 3, time: 1_700_000_000_001, type: 'note', body: { text: 'b' } })
    expect((await store.ingest([b.line])).pending).toBe(1)
    expect((await store.ingest([a.line])).accepted.map((e) => e.id)).toEqual([a.id])
    expect(await store.has(b.id)).toBe(false)
    // A time or clock beyond MAX_FUTURE_MS: refused for now, taken once the clock has caught up.
    let now = 1_800_000_000_000
    const later = await openTestStore(teardown, { now: () => now })
    const early = throwawayAuthor().next({ clock: 1, time: now + MAX_FUTURE_MS + 60_000, type: 'note', body: { text: 'from the future' } })
    expect((await later.ingest([early.line])).rejected.map((r) => r.reason)).toEqual(['future'])
    now += 2 * 60_000
    expect((await later.ingest([early.line])).accepted).toHaveLength(1)
  })

  it('catch-up: a new node takes a year of honest history in any order, by ingest and by sync with quotas on', async () => {
    const history = yearOfHistory(12, 40)
    const orders: Array<[string, DecodedEntry[]]> = [
      ['chains one after another', [...history.byAuthor.values()].flat()],
      ['every chain backwards', [...history.byAuthor.values()].flatMap((chain) => [...chain].reverse())],
      ['shuffled', shuffled(history.all, 12)]
    ]
    for (const [name, order] of orders) {
      const store = await openTestStore(teardown, { codec })
      let accepted = 0
      for (let i = 0; i < order.length; i += 50) {
        const report = await store.ingest(order.slice(i, i + 50).map((e) => e.line))
        expect(report.rejected, name).toEqual([])
        accepted += report.accepted.length
      }
      expect(accepted, name).toBe(history.all.length)
    }
    // By sync, from a node holding it, to a fresh node whose quotas are the real ones.
    const full = await startNode(teardown, { codec })
    expect((await full.store.ingest(history.all.map((e) => e.line))).accepted).toHaveLength(history.all.length)
    const fresh = await startNode(teardown, { codec, admission: new Admission() })
    await connect(fresh, full)
    await waitFor(() => fresh.store.count() === history.all.length, { timeoutMs: 60_000, what: `the fresh node to hold all ${history.all.length} entries of a year` })
    expect(fresh.sync.stats().failed).toBe(0)
  })

  it('restart after weeks: a node continues its chain at the wall clock, and peers take it; a clock that ran ahead still rises', async () => {
    const dir = await tempDir(teardown, 'buildhaus-clock-restart-')
    const signer = newSigner()
    let now = 1_780_000_000_000
    const open = async (): Promise<LedgerStore> => {
      const store = await LedgerStore.open({ path: join(dir, 'ledger'), codec: testCodec, signer, now: () => now })
      store.allowAppend()
      return store
    }
    let store = await open()
    const before = await store.append('note', { text: 'before the holiday' })
    await store.close()
    now += 21 * 24 * 3600_000
    store = await open()
    const after = await store.append('note', { text: 'three weeks later' })
    expect(after.entry.clock).toBe(now)
    expect(after.entry.clock).toBeGreaterThan(before.entry.clock)
    await store.close()
    const peer = await openTestStore(teardown, { now: () => now })
    expect((await peer.ingest([before.line, after.line])).accepted).toHaveLength(2)

    // A node whose clock ran five minutes fast, set right: its chain still rises, and peers take both.
    const aheadSigner = newSigner()
    const aheadStore = await LedgerStore.open({ path: join(dir, 'ahead'), codec: testCodec, signer: aheadSigner, now: () => now + 5 * 60_000 })
    aheadStore.allowAppend()
    const fast = await aheadStore.append('note', { text: 'my clock runs five minutes fast' })
    await aheadStore.close()
    const corrected = await LedgerStore.open({ path: join(dir, 'ahead'), codec: testCodec, signer: aheadSigner, now: () => now })
    corrected.allowAppend()
    teardown(async () => { await corrected.close() })
    const next = await corrected.append('note', { text: 'clock set right' })
    expect(next.entry.clock).toBe(fast.entry.clock + 1)
    expect((await peer.ingest([fast.line, next.line])).accepted).toHaveLength(2)
  })
})

/**
 * A year of jobs and claims by `authors` honest nodes, each writing
 * `perAuthor` entries at random moments, every clock set as a node does:
 * max(its wall clock, the greatest clock it has seen + 1). Claims refer to
 * earlier jobs by other authors.
 */
function yearOfHistory (authors: number, perAuthor: number): { all: DecodedEntry[], byAuthor: Map<string, DecodedEntry[]> } {
  const start = Date.now() - 365 * 24 * 3600_000
  let seed = 7
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }
  const events = Array.from({ length: authors * perAuthor }, (_, i) => ({ author: i % authors, time: start + Math.floor(random() * 364 * 24 * 3600_000) }))
    .sort((a, b) => a.time - b.time)
  const signers = Array.from({ length: authors }, () => newSigner())
  const chains = signers.map(() => ({ seq: 0, prev: null as string | null, clock: -1 }))
  const byAuthor = new Map<string, DecodedEntry[]>(signers.map((s) => [s.publicHex, []]))
  const all: DecodedEntry[] = []
  const jobs: DecodedEntry[] = []
  let seen = -1
  for (const { author, time } of events) {
    const chain = chains[author]!
    const clock = Math.max(time, seen + 1, chain.clock + 1)
    const target = jobs.length > 0 ? jobs[Math.floor(random() * jobs.length)] : undefined
    const entry = target !== undefined && random() < 0.5
      ? codec.create(signers[author]!, { seq: chain.seq, prev: chain.prev, clock, time, type: 'claim', body: { job: target.id, platform: 'linux-x64', lease: time + 15_000 } })
      : codec.create(signers[author]!, { seq: chain.seq, prev: chain.prev, clock, time, type: 'job', body: body(`job ${all.length}`) })
    if (entry.entry.type === 'job') jobs.push(entry)
    chain.seq++
    chain.prev = entry.id
    chain.clock = clock
    // Gossip is quick but not instant: most nodes have seen most earlier entries.
    seen = Math.max(seen, clock)
    all.push(entry)
    byAuthor.get(signers[author]!.publicHex)!.push(entry)
  }
  return { all, byAuthor }
}

function shuffled<T> (items: readonly T[], seed: number): T[] {
  const out = [...items]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
