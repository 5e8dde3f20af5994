import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { waitFor } from '../../src/util/wait.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { connect, converged, startNode, type TestNode } from './mesh.js'

type Teardown = ReturnType<typeof useTeardown>

/**
 * A node that wrote 10 entries, all of which its peer holds, and a copy of
 * its ledger taken after the first 5: the "restored from an old backup" case.
 */
async function nodeWithOldBackup (teardown: Teardown): Promise<{ peer: TestNode, key: ReturnType<typeof generateNodeKey>, backup: string }> {
  const key = generateNodeKey()
  const peer = await startNode(teardown)
  const first = await startNode(teardown, { key })
  await connect(first, peer)
  for (let i = 0; i < 5; i++) await first.store.append('note', { text: `before backup ${i}` })
  await first.stop()
  const backup = join(await tempDir(teardown), 'ledger-backup')
  await cp(first.path, backup, { recursive: true })
  const again = await startNode(teardown, { key, path: first.path })
  await connect(again, peer)
  for (let i = 5; i < 10; i++) await again.store.append('note', { text: `after backup ${i}` })
  await converged([again, peer], 10)
  await again.stop()
  return { peer, key, backup }
}

describe('self-fork guard', () => {
  const teardown = useTeardown()

  it('a node restored from an old copy learns its newer entries from the mesh before appending, and does not fork', async () => {
    const { peer, key, backup } = await nodeWithOldBackup(teardown)
    const restored = await startNode(teardown, { key, path: backup, allowAppend: false })
    expect(restored.store.count()).toBe(5)
    await expect(restored.store.append('note', { text: 'too early' })).rejects.toMatchObject({ name: 'AppendNotAllowedError' })
    await connect(restored, peer)
    const learnt = await restored.sync.learnOwnChain({ timeoutMs: 20_000 })
    // (The sync a new connection starts may adopt some of them first: what matters is the head.)
    expect(learnt).toMatchObject({ peersAsked: 1, peersAnswered: 1, selfForked: false, head: { seq: 9 } })
    restored.store.allowAppend()
    const next = await restored.store.append('note', { text: 'carrying on' })
    expect(next.entry.seq).toBe(10)
    await converged([restored, peer], 11)
    expect(peer.store.isEquivocating(key.publicHex)).toBe(false)
    expect(await peer.store.forks()).toEqual([])
  })

  it('without learning first, the conflicting entry is caught: the node refuses to append and the peer sees the fork', async () => {
    const { peer, key, backup } = await nodeWithOldBackup(teardown)
    const careless = await startNode(teardown, { key, path: backup })
    const conflicting = await careless.store.append('note', { text: 'a different seq 5' })
    expect(conflicting.entry.seq).toBe(5)
    await connect(careless, peer)
    await waitFor(() => careless.store.selfForked && peer.store.isEquivocating(key.publicHex), { timeoutMs: 30_000, what: 'both sides to see the self-fork' })
    await expect(careless.store.append('note', { text: 'more' })).rejects.toMatchObject({ name: 'SelfForkError', message: expect.stringMatching(/seq 5/) })
    const proofs = await peer.store.forks()
    expect(proofs.map((p) => [p.seq, p.entries.map((e) => e.id).includes(conflicting.id)])).toEqual([[5, true]])
  })

  it('learnOwnChain with nobody to ask returns at its deadline, saying so', async () => {
    const lonely = await startNode(teardown, { allowAppend: false })
    const started = Date.now()
    const learnt = await lonely.sync.learnOwnChain({ timeoutMs: 300 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    expect(learnt).toMatchObject({ peersAsked: 0, peersAnswered: 0, adopted: 0, selfForked: false })
  })
})
