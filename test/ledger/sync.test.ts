import { describe, expect, it } from 'vitest'
import { useTeardown } from '../helpers/temp-home.js'
import { waitFor } from '../../src/util/wait.js'
import { makeChain, newSigner } from './helpers.js'
import { connect, converged, partition, startNode, type TestNode } from './mesh.js'

/** `count` appends on each node at once, interleaved across nodes. */
async function writeConcurrently (nodes: TestNode[], count: number, tag: string): Promise<void> {
  await Promise.all(nodes.map(async (node, n) => {
    for (let i = 0; i < count; i++) await node.store.append('note', { text: `${tag} ${n}.${i}` })
  }))
}

describe('ledger sync between real nodes', () => {
  const teardown = useTeardown()

  it('three writers converge; a stopped node catches up after restart; a late joiner gets everything', async () => {
    const [a, b, c] = [await startNode(teardown), await startNode(teardown), await startNode(teardown)]
    await connect(a, b)
    await connect(b, c)
    await connect(c, a)
    await writeConcurrently([a, b, c], 100, 'live')
    const [ea, eb, ec] = await converged([a, b, c], 300)
    expect(eb).toEqual(ea)
    expect(ec).toEqual(ea)

    // c goes away; a and b write 1,000 more entries it does not see.
    const cKey = c.key
    const cPath = c.path
    await c.stop()
    await Promise.all([
      (async () => { for (let i = 0; i < 500; i++) await a.store.append('note', { text: `missed a${i}` }) })(),
      Promise.all(Array.from({ length: 500 }, async (_, i) => await b.store.append('note', { text: `missed b${i}` })))
    ])
    await converged([a, b], 1300)

    // c restarts on the same LevelDB directory and the same key, and catches up.
    const c2 = await startNode(teardown, { key: cKey, path: cPath })
    expect(c2.store.count()).toBe(300)
    await connect(c2, a)
    const [ea2, ec2] = await converged([a, c2], 1300)
    expect(ec2).toEqual(ea2)

    // A node joining late, connected to one peer only, gets the whole history.
    const d = await startNode(teardown)
    await connect(d, c2)
    const [ed] = await converged([d], 1300)
    expect(ed).toEqual(ea2)
  })

  it('an anti-entropy round syncs with a few connected peers chosen at random, not every one', async () => {
    const quiet = { intervalMs: 600_000, peersPerRound: 2 }
    const hub = await startNode(teardown, { sync: quiet })
    const spokes = await Promise.all([1, 2, 3, 4].map(async () => await startNode(teardown, { sync: quiet })))
    for (const spoke of spokes) await connect(spoke, hub)
    // Each new connection gets one session at once.
    await waitFor(() => hub.sync.stats().sessions === 4, { timeoutMs: 30_000, intervalMs: 20, what: 'the sessions on connect' })
    await hub.sync.syncAll()
    expect(hub.sync.stats().sessions).toBe(6)
    await hub.sync.syncAll({ all: true })
    expect(hub.sync.stats().sessions).toBe(10)
  })

  it('catchUp returns once a newcomer holds every entry its peers had (what a node awaits before planning work)', async () => {
    const a = await startNode(teardown)
    for (let i = 0; i < 400; i++) await a.store.append('note', { text: `history ${i}` })
    const late = await startNode(teardown)
    await connect(late, a)
    const caught = await late.sync.catchUp({ timeoutMs: 30_000 })
    expect(caught).toMatchObject({ peersAsked: 1, peersAnswered: 1 })
    expect(late.store.count()).toBe(400)
    // Nobody to ask: it returns at once with nothing.
    const alone = await startNode(teardown)
    expect(await alone.sync.catchUp({ timeoutMs: 5_000 })).toEqual({ peersAsked: 0, peersAnswered: 0, received: 0 })
  })

  it('conflicting heads yield a fork proof on both sides', async () => {
    const settings = { sync: { intervalMs: 600_000 } }
    const a = await startNode(teardown, settings)
    const b = await startNode(teardown, settings)
    // Author x: both hold seq 0..2, with different entries at seq 2 (same head seq).
    // Author y: a holds seq 0..4, b holds 0..2 with a different entry at seq 2 (b is behind).
    const [x, y] = [newSigner(), newSigner()]
    const xs = makeChain(x, 3)
    const [x2] = makeChain(x, 1, { from: 2, prev: xs[1]!.id, text: 'other' })
    const ys = makeChain(y, 5)
    const [y2] = makeChain(y, 1, { from: 2, prev: ys[1]!.id, text: 'other' })
    await a.store.ingest([...xs, ...ys].map((e) => e.line))
    await b.store.ingest([...xs.slice(0, 2), x2!, ...ys.slice(0, 2), y2!].map((e) => e.line))
    await connect(a, b)
    await waitFor(() => [a, b].every((n) => n.store.isEquivocating(x.publicHex) && n.store.isEquivocating(y.publicHex)), { timeoutMs: 30_000, what: 'both nodes to hold both fork proofs' })
    for (const n of [a, b]) {
      const proofs = (await n.store.forks()).map((p) => [p.author, p.seq, p.entries.map((e) => e.id).sort()])
      expect(proofs.sort()).toEqual([
        [x.publicHex, 2, [xs[2]!.id, x2!.id].sort()],
        [y.publicHex, 2, [ys[2]!.id, y2!.id].sort()]
      ].sort())
    }
  })

  it('a session quota splits a long catch-up into follow-up sessions', async () => {
    const settings = { sync: { maxEntriesPerSession: 500, intervalMs: 600_000 } }
    const full = await startNode(teardown, settings)
    await Promise.all(Array.from({ length: 1300 }, async (_, i) => await full.store.append('note', { text: `n${i}` })))
    const fresh = await startNode(teardown, settings)
    await connect(fresh, full)
    const [a, b] = await converged([full, fresh], 1300)
    expect(b).toEqual(a)
    const sessions = full.sync.stats().sessions + fresh.sync.stats().sessions
    expect(sessions).toBeGreaterThanOrEqual(2 * 3)
  })

  it('two halves partitioned and healed converge with nothing lost', async () => {
    const nodes = [await startNode(teardown), await startNode(teardown), await startNode(teardown), await startNode(teardown)]
    const [a, b, c, d] = nodes as [TestNode, TestNode, TestNode, TestNode]
    await connect(a, b)
    await connect(b, c)
    await connect(c, d)
    await writeConcurrently(nodes, 20, 'before')
    await converged(nodes, 80)

    await partition([a, b], [c, d])
    await writeConcurrently(nodes, 50, 'apart')
    await converged([a, b], 180)
    await converged([c, d], 180)
    // Really apart: no connection crosses, and neither half has the other's new entries.
    const right = new Set([c, d].map((n) => n.libp2p.peerId.toString()))
    for (const n of [a, b]) expect(n.libp2p.getConnections().filter((conn) => right.has(conn.remotePeer.toString()))).toEqual([])
    expect(a.store.count()).toBe(180)

    await connect(b, c)
    const exports = await converged(nodes, 280)
    for (const other of exports.slice(1)) expect(other).toEqual(exports[0])
    const texts = new Set(exports[0]!.map((line) => (JSON.parse(line) as { body: { text: string } }).body.text))
    for (let n = 0; n < 4; n++) {
      for (let i = 0; i < 50; i++) expect(texts.has(`apart ${n}.${i}`)).toBe(true)
    }
  })
})
