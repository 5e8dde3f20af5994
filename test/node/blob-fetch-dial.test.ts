import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { blobHashOf } from '../../src/blobs/hash.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import { waitFor } from '../../src/util/wait.js'
import { tempJobDir, submitDir } from '../helpers/job-dir.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'

/**
 * A blob asked of a node's API that only a peer it is not connected to holds:
 * the node dials that peer where its address book allows, as a build's source
 * fetch does, instead of answering "try again once a peer that has it is
 * connected" until its keeper happens to connect them (it found a flaky test:
 * test/e2e/verify-mesh's report fetched through `liar`).
 */
describe('GET /api/blobs/:hash of a blob only an unconnected member holds', () => {
  const teardown = useTeardown()

  it('dials the holder at the address its heartbeat announced and serves the blob', async () => {
    const base = await tempDir(teardown, 'buildhaus-blob-dial-')
    const nodes: RunningNode[] = []
    teardown(async () => { await Promise.allSettled([...nodes].reverse().map(async (n) => { await n.stop() })) })
    for (const name of ['hub', 'holder', 'asker']) {
      const home = join(base, name)
      await testMesh().keyFor(home)
      const config = buildNodeConfig({
        home, mesh: testMesh().file, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: nodes.length === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
        mdns: false, platform: ['linux-x64'], slots: '0', api: '127.0.0.1:0', sandbox: 'none'
      }, {})
      nodes.push(await startNode(config, {
        presence: { intervalMs: 300 },
        // One peer is enough for holder and asker: their keepers never connect them to each other.
        ...(name === 'hub' ? {} : { keeper: { targetPeers: 1 } }),
        ownChainTimeoutMs: 0,
        writeApiFile: false,
        warn: () => {}
      }))
    }
    const [, holder, asker] = nodes as [RunningNode, RunningNode, RunningNode]
    // A job nobody can build: its source stays on the holder alone.
    const dir = await tempJobDir(teardown, { name: 'held', steps: [{ name: 'build', run: 'true' }] }, { 'data.txt': 'only the holder has this\n' })
    const job = await submitDir(holder, dir, { overrides: { platforms: ['nowhere-x64'] } })
    await waitFor(() => asker.jobs.get(job.id) !== undefined, { timeoutMs: 20_000, what: 'the job to reach the asker' })
    // The holder's heartbeat, with the addresses it listens on, reached the asker through the hub.
    await waitFor(() => (asker.presence.member(holder.author)?.heartbeat.addrs?.length ?? 0) > 0, { timeoutMs: 20_000, what: 'the holder\'s heartbeat to reach the asker' })
    expect(asker.libp2p.getConnections(holder.peerId)).toEqual([])

    const response = await fetch(new URL(`/api/blobs/${job.source}`, asker.apiUrl), { signal: AbortSignal.timeout(20_000) })
    const body = Buffer.from(await response.arrayBuffer())
    expect(response.status, body.toString('utf8')).toBe(200)
    expect(blobHashOf(body)).toBe(job.source)
  })
})
