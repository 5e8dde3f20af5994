import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createMeshLibp2p } from '../../src/gossip/libp2p.js'
import { encodeFrame, type HeadTriple, type SyncFrame } from '../../src/ledger/sync/frames.js'
import { ledgerSync, SYNC_PROTOCOL, SYNC_PROTOCOL_DIGEST, type SyncNetwork } from '../../src/ledger/sync/index.js'
import { bucketOf, bucketsToExchange, collectHeads, summarize, summarizeStore } from '../../src/ledger/sync/summary.js'
import { waitFor } from '../../src/util/wait.js'
import { useTeardown } from '../helpers/temp-home.js'
import { makeChain, newSigner } from './helpers.js'
import { connect, converged, startNode, type TestNode } from './mesh.js'

/** Sessions only when a test asks (and the one libp2p starts on connect). */
const manual = { sync: { intervalMs: 3_600_000 } }

/** One entry by each of `count` fresh authors. */
function lonelyChains (count: number): string[] {
  return Array.from({ length: count }, () => makeChain(newSigner(), 1)[0]!.line)
}

async function ingestAll (nodes: TestNode[], lines: string[]): Promise<void> {
  for (const node of nodes) {
    const report = await node.store.ingest(lines)
    expect(report.rejected).toEqual([])
  }
}

/** Wait until the sessions libp2p starts on connect are over, so that a test's own session is the only one. */
async function quiet (nodes: TestNode[], sessions: number): Promise<void> {
  await waitFor(() => nodes.reduce((n, node) => n + node.sync.stats().sessions + node.sync.stats().failed, 0) >= sessions, { timeoutMs: 20_000, what: `${sessions} sync sessions to end` })
}

const hex = (c: string): string => c.repeat(64)

describe('the heads\' digests', () => {
  it('agree exactly when the heads and the forked authors agree; buckets single out the differing chains', () => {
    const heads: HeadTriple[] = [[hex('1'), 3, hex('a')], [hex('2'), 0, hex('b')]]
    const same = summarize(heads.map((h) => [...h] as HeadTriple), [])
    expect(summarize(heads, []).all).toBe(same.all)
    expect(summarize([[hex('1'), 4, hex('c')], heads[1]!], []).all).not.toBe(same.all)
    expect(summarize(heads, [hex('2')]).all).not.toBe(same.all)
    expect(bucketsToExchange(same, { all: same.all })).toEqual(new Set())
    expect(bucketsToExchange(same, { all: hex('0') })).toBeNull()

    // Spread over every bucket, as random keys are: the first byte cycles.
    const many: HeadTriple[] = Array.from({ length: 300 }, (_, i) => [(i % 256).toString(16).padStart(2, '0') + i.toString(16).padStart(62, '0'), 0, hex('e')] as HeadTriple)
      .sort((x, y) => x[0] < y[0] ? -1 : 1)
    const mine = summarize(many, [])
    expect(mine.buckets).toHaveLength(256)
    const changed = many.map((h, i) => i === 7 ? [h[0], 1, hex('f')] as HeadTriple : h)
    expect(bucketsToExchange(mine, summarize(changed, []))).toEqual(new Set([bucketOf(many[7]![0])]))
    // Below SUMMARY_BUCKETS_FROM_CHAINS, the heads are cheaper than the buckets.
    expect(summarize(many.slice(0, 10), []).buckets).toBeUndefined()
  })
})

describe('sync by digest between real nodes', () => {
  const teardown = useTeardown()

  it('nodes holding the same heads end a session at the digests; a few new entries in many chains send only their buckets\' heads', async () => {
    const [a, b] = [await startNode(teardown, manual), await startNode(teardown, manual)]
    await ingestAll([a, b], lonelyChains(300))
    await connect(a, b)
    await quiet([a, b], 1)

    const inSync = await a.sync.syncWith(b.libp2p.peerId)
    expect(inSync).toMatchObject({ inSync: true, headsSent: 0, sent: 0, received: 0 })
    expect(b.sync.stats().inSync).toBeGreaterThanOrEqual(1)

    // Entries only `a` holds (not gossiped: sync must carry them): two new chains, one longer chain.
    const longer = newSigner()
    const extended = makeChain(longer, 3)
    await ingestAll([a, b], [extended[0]!.line])
    const onlyA = [...lonelyChains(2), extended[1]!.line, extended[2]!.line]
    await ingestAll([a], onlyA)
    const result = await a.sync.syncWith(b.libp2p.peerId)
    expect(result).toMatchObject({ inSync: false, sent: 4, received: 0 })
    // 302 and 304 chains; the heads of three buckets (~1.2 chains each) instead of all of them.
    expect(result!.headsSent).toBeGreaterThanOrEqual(3)
    expect(result!.headsSent).toBeLessThan(20)
    const [ea, eb] = await converged([a, b], 305)
    expect(eb).toEqual(ea)
    expect((await b.sync.syncWith(a.libp2p.peerId))?.inSync).toBe(true)

    // The listener ahead: the dialer learns which buckets differ from the listener's digests, and fetches them.
    await ingestAll([b], lonelyChains(2))
    const fetched = await a.sync.syncWith(b.libp2p.peerId)
    expect(fetched).toMatchObject({ inSync: false, sent: 0, received: 2 })
    expect(fetched!.headsSent).toBeLessThan(20)
    await converged([a, b], 307)
  })

  it('among many chains, a fork one side holds reaches the other through its bucket, and the fork proof with it', async () => {
    const [a, b] = [await startNode(teardown, manual), await startNode(teardown, manual)]
    await ingestAll([a, b], lonelyChains(300))
    // Author x: a holds seq 0..2, b the same with another entry at seq 2.
    const x = newSigner()
    const xs = makeChain(x, 3)
    const [x2] = makeChain(x, 1, { from: 2, prev: xs[1]!.id, text: 'other' })
    await ingestAll([a], xs.map((e) => e.line))
    await ingestAll([b], [...xs.slice(0, 2), x2!].map((e) => e.line))
    await connect(a, b)
    await quiet([a, b], 1)
    await waitFor(() => [a, b].every((n) => n.store.isEquivocating(x.publicHex)), { timeoutMs: 20_000, what: 'both nodes to hold the fork proof' })
    // Each keeps its own entry at seq 2 on its chain, so x's bucket never agrees again: its few heads travel, not the other 300.
    const again = await a.sync.syncWith(b.libp2p.peerId)
    expect(again).toMatchObject({ inSync: false, received: 0 })
    expect(again!.headsSent).toBeLessThan(20)
  })

  it('past the heads a session may announce, a digest session still finds and carries every chain that differs', async () => {
    // Each side announces at most 100 heads here (65,536 by default): 1.0.0 would announce the first 100 of 300 chains only.
    const capped = { sync: { ...manual.sync, maxHeads: 100 } }
    const [a, b] = [await startNode(teardown, capped), await startNode(teardown, capped)]
    await ingestAll([a, b], lonelyChains(300))
    // The summary digests every head in one pass, keeps none past the cap, and the buckets are read again alone.
    const all = (await collectHeads(a.store, { maxHeads: 1_000 })).heads
    const summary = await summarizeStore(a.store, 100)
    expect(summary.heads).toBeUndefined()
    expect(summary.all).toBe(summarize(all, []).all)
    const bucket = bucketOf(all[250]![0])
    expect((await collectHeads(a.store, { buckets: new Set([bucket]) })).heads).toEqual(all.filter(([author]) => bucketOf(author) === bucket))

    await connect(a, b)
    await quiet([a, b], 1)
    expect((await a.sync.syncWith(b.libp2p.peerId))?.inSync).toBe(true)
    // Chains that sort last, beyond any first 100: found by their buckets.
    const late = Array.from({ length: 40 }, () => makeChain(newSigner(), 1)[0]!).filter((e) => bucketOf(e.entry.author) >= 0xc0).slice(0, 3)
    await ingestAll([a], late.map((e) => e.line))
    const result = await a.sync.syncWith(b.libp2p.peerId)
    expect(result).toMatchObject({ inSync: false, sent: late.length })
    expect(result!.headsSent).toBeLessThan(30)
    await converged([a, b], 300 + late.length)
  })

  it('a node that speaks only sync 1.0.0 and a new one still sync, both ways', async () => {
    const [fresh, old] = [await startNode(teardown, manual), await startNode(teardown, manual)]
    // `old` as a node before protocol 1.1.0 was: it neither offers nor answers it.
    await old.sync.stop()
    const { libp2p } = old
    const network: SyncNetwork = {
      peerId: libp2p.peerId,
      handle: async (protocol, handler, options) => { if (protocol === SYNC_PROTOCOL) await libp2p.handle(protocol, handler, options) },
      unhandle: async (protocol) => { await libp2p.unhandle(protocol) },
      dialProtocol: async (peer, _protocols, options) => await libp2p.dialProtocol(peer, SYNC_PROTOCOL, options),
      getConnections: () => libp2p.getConnections(),
      addEventListener: (type, listener) => { libp2p.addEventListener(type, listener) },
      removeEventListener: (type, listener) => { libp2p.removeEventListener(type, listener) }
    }
    const oldSync = ledgerSync({ network, store: old.store }, manual.sync)
    await oldSync.start()
    teardown(async () => { await oldSync.stop() })

    expect(libp2p.getProtocols()).not.toContain(SYNC_PROTOCOL_DIGEST)
    await ingestAll([fresh], lonelyChains(5))
    await ingestAll([old], lonelyChains(7))
    // One of them dials the other on connect: a new node's offer of 1.1.0 falls back to 1.0.0.
    await connect(fresh, old)
    await converged([fresh, old], 12)
    await waitFor(() => fresh.sync.stats().sessions >= 1 && oldSync.stats().sessions >= 1, { timeoutMs: 20_000, what: 'the session on connect to end' })
    expect(fresh.sync.stats().failed + oldSync.stats().failed).toBe(0)

    await ingestAll([old], lonelyChains(1))
    expect(await oldSync.syncWith(fresh.libp2p.peerId)).toMatchObject({ sent: 1, received: 0 })
    await ingestAll([fresh], lonelyChains(1))
    expect(await fresh.sync.syncWith(old.libp2p.peerId)).toMatchObject({ inSync: false, sent: 1, received: 0, headsSent: 14 })
    const [ef, eo] = await converged([fresh, old], 14)
    expect(eo).toEqual(ef)
  })

  it('a malformed digest, a digest on 1.0.0, and `done` after digests that differ end the session; honest sync goes on', async () => {
    // A long wait for a frame: the silent sessions below stay open unless refused.
    const victim = await startNode(teardown, { sync: { intervalMs: 1_000, frameTimeoutMs: 30_000 } })
    const honest = await startNode(teardown, { sync: { intervalMs: 1_000, frameTimeoutMs: 1_000 } })
    const rogue = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
    teardown(async () => { await rogue.stop() })
    await rogue.handle([SYNC_PROTOCOL_DIGEST, SYNC_PROTOCOL], () => {})
    await ingestAll([victim], lonelyChains(3))
    await connect(victim, honest)
    await rogue.dial(victim.libp2p.getMultiaddrs()[0]!)
    const send = async (stream: Stream, frame: SyncFrame): Promise<void> => {
      if (!stream.send(lp.encode.single(encodeFrame(frame)))) await stream.onDrain()
    }
    const abortedByVictim = async (stream: Stream, what: string): Promise<void> => {
      await waitFor(() => stream.status !== 'open', { timeoutMs: 15_000, what: `the victim to end the stream (${what})` })
    }

    // 1. 255 bucket digests where 256 are due.
    const short = await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL_DIGEST)
    await send(short, { t: 'digest', all: hex('0'), buckets: Array.from({ length: 255 }, () => hex('0')) })
    await abortedByVictim(short, 'malformed digest')

    // 2. A digest on a stream of protocol 1.0.0.
    const old = await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL)
    await send(old, { t: 'digest', all: hex('0') })
    await abortedByVictim(old, 'digest on 1.0.0')

    // 3. A digest that differs from the victim's, then `done` as if they agreed: the victim's entries are not skipped silently.
    const failedBefore = victim.sync.stats().failed
    const liar = await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL_DIGEST)
    await send(liar, { t: 'digest', all: hex('0') })
    await send(liar, { t: 'done' })
    await abortedByVictim(liar, '`done` after differing digests')
    await waitFor(() => victim.sync.stats().failed > failedBefore, { timeoutMs: 15_000, what: 'the victim to count the session as failed' })
    expect(victim.sync.stats().lastError).toMatch(/digest differs/)

    // 4. Silent sessions on both protocols at once: a peer gets two inbound sync sessions, whichever protocols they speak.
    const silent = [
      await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL_DIGEST),
      await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL_DIGEST)
    ]
    const third = await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL)
    await abortedByVictim(third, 'a third inbound session')
    expect(silent.every((stream) => stream.status === 'open')).toBe(true)

    // Honest sync goes on.
    await ingestAll([honest], lonelyChains(2))
    const [ev, eh] = await converged([victim, honest], 5)
    expect(eh).toEqual(ev)
  })
})
