import { existsSync } from 'node:fs'
import { networkInterfaces } from 'node:os'
import { join } from 'node:path'
import type { JobView } from '../../src/jobs/index.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import { testMesh } from '../helpers/test-mesh.js'
import { createExecutor, type Executor } from '../../src/sandbox/index.js'
import { waitFor } from '../../src/util/wait.js'

/** Debian's chromium, which .ci/run installs; the browser tests skip (saying so) without it. */
export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

export function chromiumMissing (): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium); the dashboard's browser tests need it`
}

/** An IPv4 address of this machine that is not loopback, if it has one (to reach a node's API from "another machine"). */
export function nonLoopbackAddress (): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.family === 'IPv4' && !info.internal) return info.address
    }
  }
  return undefined
}

export interface MeshOptions {
  /** Homes go here (the caller removes it). */
  dir: string
  count: number
  /** API host per node index (default 127.0.0.1). */
  apiHosts?: Record<number, string>
  slots?: number
}

/**
 * A small mesh of real nodes in this process, as `buildhaus-node demo`
 * starts it: one bubblewrap executor shared by all, real libp2p on
 * loopback, real LevelDB homes, each node's real HTTP API and dashboard.
 */
export async function startMesh (options: MeshOptions): Promise<{ nodes: RunningNode[], executor: Executor, stop: () => Promise<void> }> {
  const executor = await createExecutor('bubblewrap')
  const nodes: RunningNode[] = []
  const stop = async (): Promise<void> => {
    await Promise.allSettled([...nodes].reverse().map(async (n) => { await n.stop() }))
  }
  try {
    for (let i = 0; i < options.count; i++) {
      // Every node is a founder of the test mesh: members' results count (the default mode).
      await testMesh().keyFor(join(options.dir, `node${i + 1}`))
      const config = buildNodeConfig({
        home: join(options.dir, `node${i + 1}`),
        mesh: testMesh().file,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: i === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
        mdns: false,
        platform: ['linux-x64'],
        slots: String(options.slots ?? 2),
        api: `${options.apiHosts?.[i] ?? '127.0.0.1'}:0`,
        sandbox: 'bubblewrap'
      }, {})
      nodes.push(await startNode(config, { executor, presence: { intervalMs: 500 }, warn: () => {} }))
    }
    await waitFor(() => nodes.every((n) => n.presence.size >= options.count - 1), { timeoutMs: 30_000, what: 'the mesh nodes to see each other' })
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes, executor, stop }
}

/** Wait until the node's view of a job has left `pending` on every platform. */
export async function waitDecided (node: RunningNode, id: string, timeoutMs = 60_000): Promise<JobView> {
  return await waitFor(() => {
    const view = node.jobs.get(id)
    return view !== undefined && view.platforms.every((p) => p.verdict !== 'pending' && p.verdict !== 'unmatched') ? view : undefined
  }, { timeoutMs, what: `job ${id.slice(0, 12)} to be decided` })
}
