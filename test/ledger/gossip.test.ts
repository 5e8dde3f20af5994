import { describe, expect, it } from 'vitest'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
import { auditLines } from '../../src/ledger/audit.js'
import { ENTRIES_TOPIC, FORKS_TOPIC } from '../../src/ledger/gossip/index.js'
import type { ForkProof } from '../../src/ledger/forks.js'
import { waitFor } from '../../src/util/wait.js'
import { useTeardown } from '../helpers/temp-home.js'
import { makeChain, newSigner } from './helpers.js'
import { connect, exportOf, startNode, type TestNode } from './mesh.js'

/** Sync only on connect and then rarely: what arrives meanwhile came by gossip. */
const gossipOnly = { sync: { intervalMs: 600_000 } }

async function meshed (from: { libp2p: MeshLibp2p }, to: { libp2p: MeshLibp2p }, topic: string): Promise<void> {
  const pubsub = from.libp2p.services.pubsub as unknown as { getMeshPeers: (topic: string) => string[] }
  await waitFor(() => pubsub.getMeshPeers(topic).includes(to.libp2p.peerId.toString()), { timeoutMs: 20_000, what: `a gossip mesh link on ${topic}` })
}

describe('gossip fast path and fork proofs', () => {
  const teardown = useTeardown()

  it('carries each new entry at once, and rejects invalid ones before forwarding them', async () => {
    const a = await startNode(teardown, gossipOnly)
    const b = await startNode(teardown, gossipOnly)
    const rogue = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'], topics: [ENTRIES_TOPIC] })
    teardown(async () => { await rogue.stop() })
    rogue.services.pubsub.subscribe(ENTRIES_TOPIC)
    await connect(a, b)
    await rogue.dial(a.libp2p.getMultiaddrs()[0]!)
    await meshed(a, b, ENTRIES_TOPIC)
    await meshed({ libp2p: rogue }, a, ENTRIES_TOPIC)

    // What b's validator is shown: anything a forwarded.
    const seenByB: string[] = []
    const validator = b.libp2p.services.pubsub.topicValidators.get(ENTRIES_TOPIC)!
    b.libp2p.services.pubsub.topicValidators.set(ENTRIES_TOPIC, async (peer, message) => {
      seenByB.push(Buffer.from(message.data).toString('utf8'))
      return await validator(peer, message)
    })

    const appended = await a.store.append('note', { text: 'fresh' })
    await waitFor(async () => await b.store.has(appended.id), { timeoutMs: 20_000, what: 'the entry to reach b by gossip' })

    const [good] = makeChain(newSigner(), 1, { text: 'from the rogue, but valid' })
    const forged = good!.line.replace('valid', 'vaLid')
    await rogue.services.pubsub.publish(ENTRIES_TOPIC, Buffer.from(forged))
    await rogue.services.pubsub.publish(ENTRIES_TOPIC, Buffer.from('{"not":"an entry"}'))
    await rogue.services.pubsub.publish(ENTRIES_TOPIC, Buffer.from(good!.line))
    await waitFor(async () => await b.store.has(good!.id), { timeoutMs: 20_000, what: 'the valid rogue entry to reach b through a' })
    expect(await a.store.has(good!.id)).toBe(true)
    expect(seenByB).not.toContain(forged)
    expect(seenByB).not.toContain('{"not":"an entry"}')
    expect(a.store.count()).toBe(2)
  })

  it('a forged fork is detected and reported on every node, including one that joins later', async () => {
    const nodes = [await startNode(teardown, gossipOnly), await startNode(teardown, gossipOnly), await startNode(teardown, gossipOnly)]
    const [a, b, c] = nodes as [TestNode, TestNode, TestNode]
    await connect(a, b)
    await connect(b, c)
    await meshed(b, a, FORKS_TOPIC)
    await meshed(b, c, FORKS_TOPIC)
    const forksSeen = new Map<TestNode, ForkProof[]>(nodes.map((n) => [n, []]))
    for (const n of nodes) n.store.addEventListener('fork', (evt) => { forksSeen.get(n)!.push(evt.detail) })

    const evil = newSigner()
    const chain = makeChain(evil, 3)
    for (const n of nodes) await n.store.ingest(chain.map((e) => e.line))

    // The same key signs a different entry at seq 1; only c hears of it, and the proof travels by gossip.
    const [conflicting] = makeChain(evil, 1, { from: 1, prev: chain[0]!.id, text: 'the other story' })
    const report = await c.store.ingest([conflicting!.line])
    expect(report.forks).toHaveLength(1)

    await waitFor(() => nodes.every((n) => n.store.isEquivocating(evil.publicHex)), { timeoutMs: 30_000, what: 'every node to know the fork' })
    for (const n of nodes) {
      const proofs = await n.store.forks()
      expect(proofs.map((p) => [p.author, p.seq, p.entries.map((e) => e.id).sort()])).toEqual([[evil.publicHex, 1, [chain[1]!.id, conflicting!.id].sort()]])
      expect(forksSeen.get(n)).toHaveLength(1)
    }
    // The author is quarantined: its next entry is refused everywhere.
    const [next] = makeChain(evil, 1, { from: 3, prev: chain[2]!.id })
    expect((await a.store.ingest([next!.line])).rejected[0]?.reason).toBe('equivocating')

    // A node joining afterwards learns chain and proof by sync.
    const d = await startNode(teardown)
    await connect(d, a)
    await waitFor(() => d.store.isEquivocating(evil.publicHex), { timeoutMs: 30_000, what: 'the late node to learn the fork' })

    // And the export of any node shows the equivocation to an auditor.
    const audit = await auditLines(await exportOf(a), a.store.codec)
    expect(audit.forks.map((f) => [f.author, f.seq])).toEqual([[evil.publicHex, 1]])
    // …without making the export invalid: the author is excluded, the export is intact.
    expect(audit).toMatchObject({ valid: true, equivocating: [evil.publicHex] })
  })
})
