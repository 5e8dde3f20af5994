import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PRESENCE_TIMEOUT_MS } from '../../src/gossip/presence/constants.js'
import type { PeersResponse } from '../../src/node/api/types.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startCluster, type NodeProcess } from '../helpers/cluster.js'
import { useTeardown } from '../helpers/temp-home.js'

/** Every node lists exactly the others (itself excluded) as live members. */
async function allSeeEachOther (nodes: NodeProcess[]): Promise<boolean> {
  for (const node of nodes) {
    const expected = nodes.filter((n) => n !== node).map((n) => n.peerId).sort()
    const seen = await node.peerIds()
    if (JSON.stringify(seen) !== JSON.stringify(expected)) return false
  }
  return true
}

describe('a mesh of join processes on loopback', () => {
  const teardown = useTeardown()

  it('forms, loses a killed node within the presence timeout, and takes it back with the same peer id', async () => {
    const nodes = await startCluster(teardown, { size: 3 })
    const [first, second, third] = nodes as [NodeProcess, NodeProcess, NodeProcess]

    await waitFor(async () => await allSeeEachOther(nodes), { timeoutMs: 10_000, intervalMs: 250, what: 'all three nodes to list the other two' })

    // What a user runs: `peers --json` against each node's home.
    for (const node of nodes) {
      const result = await runCli(['peers', '--json', '--home', node.home])
      expect(result.code, result.stderr).toBe(0)
      const { peers } = JSON.parse(result.stdout) as PeersResponse
      expect(peers.find((p) => p.self)?.peerId).toBe(node.peerId)
      expect(peers.filter((p) => !p.self).map((p) => p.peerId).sort()).toEqual(nodes.filter((n) => n !== node).map((n) => n.peerId).sort())
      for (const peer of peers) {
        expect(peer.platforms.length).toBeGreaterThan(0)
        expect(peer.author).toMatch(/^[0-9a-f]{64}$/)
      }
    }

    // kill -9: no goodbye, the others notice by silence.
    const oldPeerId = third.peerId
    await third.kill('SIGKILL')
    // The crash leaves a stale api.json behind, which must not block the restart.
    expect((await stat(join(third.home, 'api.json'))).isFile()).toBe(true)
    for (const survivor of [first, second]) {
      await waitFor(async () => !(await survivor.peerIds()).includes(oldPeerId), {
        timeoutMs: PRESENCE_TIMEOUT_MS + 5_000,
        intervalMs: 250,
        what: `${survivor.peerId} to drop the killed node`
      })
    }

    const ready = await third.restart()
    expect(ready.peerId).toBe(oldPeerId)
    const apiFile = JSON.parse(await readFile(join(third.home, 'api.json'), 'utf8')) as { pid: number, peerId: string }
    expect(apiFile).toMatchObject({ pid: ready.pid, peerId: oldPeerId })
    await waitFor(async () => await allSeeEachOther(nodes), { timeoutMs: 15_000, intervalMs: 250, what: 'the restarted node to rejoin' })
  })

  it('stops cleanly on SIGTERM: exit 0, api.json removed, the peers see it leave', async () => {
    const nodes = await startCluster(teardown, { size: 2 })
    const [first, second] = nodes as [NodeProcess, NodeProcess]
    await waitFor(async () => await allSeeEachOther(nodes), { timeoutMs: 10_000, intervalMs: 250, what: 'the two nodes to see each other' })

    const exit = await second.stop()
    expect(exit).toEqual({ code: 0, signal: null })
    expect(second.stdout).toContain('"event":"stopped"')
    await expect(stat(join(second.home, 'api.json'))).rejects.toMatchObject({ code: 'ENOENT' })

    const result = await runCli(['peers', '--home', second.home])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('no node is running in')

    await waitFor(async () => (await first.peerIds()).length === 0, { timeoutMs: PRESENCE_TIMEOUT_MS + 5_000, intervalMs: 250, what: 'the first node to see the second leave' })
    const health = await first.health()
    expect(health).toMatchObject({ ok: true, peerId: first.peerId, peers: 0 })
  })
})
