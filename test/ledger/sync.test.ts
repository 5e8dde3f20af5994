import { describe, expect, it } from 'vitest'
import { useTeardown } from '../helpers/temp-home.js'
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
