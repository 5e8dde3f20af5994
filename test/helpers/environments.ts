import { execFileSync } from 'node:child_process'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { EnvironmentStore, findDebianArchive } from '../../src/environments/index.js'
import { waitFor } from '../../src/util/wait.js'
import { ROOT, type NodeProcess } from './cluster.js'
import { tempDir } from './temp-home.js'

/**
 * Environments shared by every test file of a run (and kept between runs on
 * one machine): one store directory, outside the repository, keyed by the
 * environments' inputs. Making one takes a minute and both cores, so each
 * is made at most once: test files that need the same environment at the
 * same time wait on the store's lock for the first one's making, then find
 * it made. `BUILDHAUS_TEST_ENVIRONMENTS` moves it; deleting it makes them
 * all afresh.
 */
export const TEST_ENVIRONMENT_DIR = process.env.BUILDHAUS_TEST_ENVIRONMENTS ?? '/var/tmp/buildhaus-test-environments'

/** Big enough for every environment the tests make, so that no test file removes another's. */
const TEST_CACHE_BYTES = 64 * 1024 * 1024 * 1024

export async function sharedEnvironmentStore (): Promise<EnvironmentStore> {
  return await EnvironmentStore.open({ dir: TEST_ENVIRONMENT_DIR, maxBytes: TEST_CACHE_BYTES })
}

/** Arguments for `join` so a node keeps its environments in the shared store. */
export const SHARED_ENVIRONMENT_ARGS = ['--environment-dir', TEST_ENVIRONMENT_DIR, '--environment-cache', String(TEST_CACHE_BYTES / 1024 / 1024)]

export type Availability = { ok: true, mirror: string } | { ok: false, reason: string }

let checked: Promise<Availability> | undefined

/**
 * Whether this machine can make Debian environments: root (mmdebstrap and
 * apt run as root), mmdebstrap installed, and Debian's archive (the one the
 * machine's apt uses) answering. Tests that need them skip, saying which is
 * missing, when one is not.
 */
export async function debianAvailability (): Promise<Availability> {
  checked ??= (async (): Promise<Availability> => {
    if (process.getuid?.() !== 0) return { ok: false, reason: 'making Debian environments needs root' }
    try {
      execFileSync('mmdebstrap', ['--version'], { stdio: 'ignore', timeout: 10_000 })
    } catch {
      return { ok: false, reason: 'mmdebstrap is not installed (apt-get install mmdebstrap)' }
    }
    let mirror: string
    try {
      mirror = await findDebianArchive()
    } catch (err) {
      return { ok: false, reason: (err as Error).message }
    }
    try {
      const response = await fetch(`${mirror}/dists/bookworm/Release`, { method: 'HEAD', signal: AbortSignal.timeout(15_000) })
      if (!response.ok) return { ok: false, reason: `Debian's archive at ${mirror} answered ${response.status}` }
    } catch (err) {
      return { ok: false, reason: `Debian's archive at ${mirror} is unreachable: ${(err as Error).message}` }
    }
    return { ok: true, mirror }
  })()
  return await checked
}

/** For `describe.skipIf`: true (and the reason printed) when Debian environments cannot be made here. */
export async function skipWithoutDebian (what: string): Promise<boolean> {
  const availability = await debianAvailability()
  if (availability.ok) return false
  process.stderr.write(`skipping ${what}: ${availability.reason}\n`)
  return true
}

/** A copy of examples/<name> in a fresh directory (removed at teardown), to submit as it is. */
export async function copyExample (teardown: (fn: () => unknown) => void, name: string): Promise<string> {
  const dir = await tempDir(teardown, `buildhaus-example-${name}-`)
  await cp(join(ROOT, 'examples', name), dir, { recursive: true })
  return dir
}

/** Wait until the node says (GET /api/health) that every one of `names` is ready to build in. */
export async function environmentsReady (node: NodeProcess, names: string[], timeoutMs: number): Promise<void> {
  await waitFor(async () => {
    const health = await node.api<{ environments?: string[] }>('/api/health')
    return names.every((name) => health.environments?.includes(name) === true)
  }, { timeoutMs, intervalMs: 1000, what: `${node.home} to have the environments ${names.join(', ')} ready (its output: ${node.stderr.split('\n').slice(-5).join(' / ')})` })
}

/** Each node's environment names as its peers hear them (GET /api/peers on `on`). */
export async function advertisedEnvironments (on: NodeProcess): Promise<Map<string, string[]>> {
  const peers = await on.api<{ peers: Array<{ author: string, environments?: string[] }> }>('/api/peers')
  return new Map(peers.peers.map((p) => [p.author, p.environments ?? []]))
}
