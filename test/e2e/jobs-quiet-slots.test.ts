import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { packDirectory } from '../../src/archive/index.js'
import { readJobSpec, type JobView } from '../../src/jobs/index.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import { createExecutor } from '../../src/sandbox/index.js'
import { waitFor } from '../../src/util/wait.js'
import { idleWhileQueued } from '../helpers/jobs.js'
import { writeJobDir } from '../helpers/job-dir.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'

/**
 * No heartbeat per change of free slots (docs/SCALING.md, item 0): a node
 * that claims or delivers publishes no heartbeat of its own; the others count
 * its claims and results from the log instead. Three one-slot in-process
 * nodes (real libp2p on loopback, LevelDB, bubblewrap) whose heartbeat
 * interval (10 s) is far longer than the whole burst's runs, so a plan that
 * still waited for a heartbeat to see a node busy or free would show as
 * duplicate builds or as slots waiting while nodes idle.
 */

const INTERVAL_MS = 10_000
const JOBS = 6
const REPLICAS = 2
const LABEL = 'quiet-q'

interface Heard { at: number, from: string, to: string, running: string[] }

describe('quiet slots: claims and results carry busy and free, heartbeats keep their interval', () => {
  const teardown = useTeardown()

  it(`a burst of ${JOBS} jobs ×${REPLICAS} on three one-slot nodes: no duplicate, no slot waiting on a heartbeat, no heartbeat per run`, async () => {
    const executor = await createExecutor('bubblewrap')
    teardown(async () => { await executor.close?.() })
    const base = await tempDir(teardown, 'buildhaus-quiet-slots-')
    const nodes: RunningNode[] = []
    for (let i = 0; i < 3; i++) {
      const home = join(base, `node${i}`)
      await testMesh().keyFor(home)
      const config = buildNodeConfig({
        home,
        mesh: testMesh().file,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: i === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
        mdns: false,
        platform: [LABEL],
        slots: '1',
        api: '127.0.0.1:0',
        sandbox: 'bubblewrap'
      }, {})
      const node = await startNode(config, { executor, presence: { intervalMs: INTERVAL_MS, timeoutMs: 120_000 }, ownChainTimeoutMs: 0, writeApiFile: false, warn: () => {} })
      teardown(async () => { await node.stop() })
      nodes.push(node)
    }
    // Heartbeats come every 10 s: ask for one now (an update with nothing to change publishes at once) until all meet.
    await waitFor(() => {
      for (const node of nodes) node.presence.update({})
      return nodes.every((n) => n.presence.size === nodes.length - 1)
    }, { timeoutMs: 30_000, intervalMs: 500, what: 'the three nodes to hear each other' })

    const heard: Heard[] = []
    for (const node of nodes) {
      node.presence.addEventListener('heartbeat', (event) => {
        heard.push({ at: Date.now(), from: event.detail.author, to: node.author, running: event.detail.heartbeat.running })
      })
    }

    const dir = await writeJobDir(join(base, 'job'), {
      name: 'quiet',
      platforms: [LABEL],
      replicas: REPLICAS,
      steps: [{ name: 'build', run: 'sleep 0.5 && mkdir -p out && sort words.txt > out/sorted.txt' }],
      artifacts: ['out/*'],
      timeout: 60
    }, { 'words.txt': 'pear\napple\nfig\n' })
    const spec = await readJobSpec(dir)
    const packed = await packDirectory(dir)
    const burstStart = Date.now()
    const ids: string[] = []
    // Every node submits its share, as users on three machines would.
    for (let k = 0; k < JOBS; k++) {
      const node = nodes[k % nodes.length]!
      const source = await node.blobs.put(packed.bytes)
      ids.push((await node.jobs.submit({ spec: { ...spec, name: `quiet-${k}` }, source })).id)
    }
    const views = await waitFor(() => {
      const all = ids.map((id) => nodes[0]!.jobs.get(id))
      return all.every((v) => v !== undefined && v.verdict === 'verified') ? all as JobView[] : undefined
    }, { timeoutMs: 120_000, intervalMs: 200, what: `all ${JOBS} jobs to be verified` })
    const burstEnd = Date.now()

    // No duplicate build: every slot has exactly its replicas' results (two claims at once end in one yielding, no result).
    const results = views.flatMap((v) => v.platforms.flatMap((p) => p.results))
    expect(results).toHaveLength(JOBS * REPLICAS)
    // A one-slot node never ran two builds at once: nobody designated a busy node for a second job.
    const authors = nodes.map((n) => n.author)
    for (const author of authors) {
      const runs = results.filter((r) => r.builder === author).map((r) => [r.start, r.end] as const).sort((a, b) => a[0] - b[0])
      for (let i = 1; i < runs.length; i++) expect(runs[i]![0]).toBeGreaterThanOrEqual(runs[i - 1]![1])
    }
    // No slot waited on a heartbeat: a result frees its builder in every plan at once. Waiting for one would
    // take up to the whole interval (10 s); half of it leaves room for a loaded machine's slow gossip.
    const idle = idleWhileQueued(views, authors)
    for (const longest of idle.longest.values()) expect(longest).toBeLessThan(INTERVAL_MS / 2)

    // And no node published a heartbeat for a claim or a result. Each node ran ~4 of the 12 runs, so announcing
    // them would be ≥ 8 heartbeats of its own; its interval allows one per 10 s, and a run that ends in a yield
    // (two claims at once, which a loaded machine can cause) still announces at once: one of those is allowed.
    const intervals = Math.ceil((burstEnd - burstStart) / INTERVAL_MS)
    for (const to of authors) {
      for (const from of authors) {
        if (from === to) continue
        const times = heard.filter((h) => h.from === from && h.to === to && h.at >= burstStart && h.at <= burstEnd)
        expect(times.length).toBeLessThanOrEqual(intervals + 2)
      }
    }
  }, 180_000)
})
