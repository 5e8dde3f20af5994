import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { EnvironmentStore, type EnvironmentLease } from '../src/environments/index.js'
import { createExecutor, DEFAULT_LIMITS, type Executor, type RunRoot } from '../src/sandbox/index.js'
import { round, spread } from './stats.js'

/**
 * What environments cost (docs/ENVIRONMENTS.md): making one from Debian's
 * archive (a base with mmdebstrap, a derived one with one small package),
 * the disk each takes, taking a lease on one already made, and what running
 * a step inside one adds over the host sandbox (goal: at most 10 ms),
 * interleaved in one run so that machine noise falls on both alike.
 *
 *   node dist/bench/environments.js [--no-create] [--dir DIR]
 *
 * Making needs root, mmdebstrap and Debian's archive, and a minute or two of
 * both cores; `--no-create` (the quick run) measures only steps and leases,
 * in an environment already made in `--dir` (default: the node's cache).
 */

const STEPS = 60
const EMPTY_TAR = Buffer.alloc(1024)

export interface EnvironmentsBenchOptions {
  /** Make a base and a derived environment afresh in a temporary store, timing both (default true). */
  create?: boolean
  /** Without `create`: the store holding `name` (default /var/cache/buildhaus/environments). */
  dir?: string
  name?: string
  /** Interleaved rounds of 60-step runs on the host and in the environment (default 3). */
  rounds?: number
}

async function stepTimes (executor: Executor, workRoot: string, rootfs: RunRoot | undefined): Promise<number[]> {
  const steps: number[] = []
  let began = 0
  const outcome = await executor.run({
    source: EMPTY_TAR,
    steps: Array.from({ length: STEPS }, (_, i) => ({ name: `s${i}`, run: 'true' })),
    artifacts: [],
    network: false,
    root: false,
    limits: { ...DEFAULT_LIMITS },
    workRoot,
    ...(rootfs !== undefined ? { rootfs } : {}),
    onLog: (text) => {
      if (text.startsWith('$ ')) began = performance.now()
      else if (text.startsWith('[step ')) steps.push(performance.now() - began)
    }
  })
  await outcome.dispose()
  if (outcome.status !== 'pass') throw new Error(`the benchmark job did not pass${rootfs !== undefined ? ' in the environment' : ''}: ${outcome.reason ?? outcome.status}: ${outcome.log.toString().slice(-300)}`)
  return steps
}

export async function benchEnvironments (options: EnvironmentsBenchOptions = {}): Promise<object> {
  const name = options.name ?? 'debian-12'
  const create = options.create ?? true
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-env-'))
  // A root node's builds run as an unprivileged user that bubblewrap binds the environment as, by path.
  await chmod(scratch, 0o711)
  const storeDir = create ? join(scratch, 'store') : (options.dir ?? '/var/cache/buildhaus/environments')
  const store = await EnvironmentStore.open({ dir: storeDir, maxBytes: 64 * 1024 * 1024 * 1024 })
  const say = (line: string): void => { process.stderr.write(`environments: ${line}\n`) }
  const leases: EnvironmentLease[] = []
  try {
    const making: Record<string, unknown> = {}
    if (create) {
      let started = performance.now()
      const base = await store.create(name, { onLine: say })
      making.base = { name, seconds: round((performance.now() - started) / 1000, 1), packages: base.manifest.packages.length, diskMb: round(base.sizeBytes / 1024 / 1024, 1) }
      started = performance.now()
      const derived = await store.acquire({ name, packages: ['hello'], onLine: say })
      leases.push(derived)
      const info = await store.find(derived.hash)
      making.derived = { packages: ['hello'], seconds: round((performance.now() - started) / 1000, 1), installed: derived.manifest.packages.length, diskMb: round(info.sizeBytes / 1024 / 1024, 1) }
    } else if (await store.lookup(name) === undefined) {
      return { skipped: `no ${name} in ${storeDir}: make one with \`buildhaus-node env create ${name}\`, or run without --no-create` }
    }

    // A cached environment: what taking (and giving back) a lease costs, once per build.
    const acquire: number[] = []
    for (let i = 0; i < 50; i++) {
      const started = performance.now()
      const lease = await store.acquire({ name })
      await lease.release()
      acquire.push(performance.now() - started)
    }
    const lease = await store.acquire({ name })
    leases.push(lease)
    const rootfs = { path: lease.root, os: lease.os }

    const executor = await createExecutor('bubblewrap')
    const workRoot = join(scratch, 'work')
    await stepTimes(executor, workRoot, undefined)
    await stepTimes(executor, workRoot, rootfs)
    const host: number[] = []
    const inside: number[] = []
    for (let round = 0; round < (options.rounds ?? 3); round++) {
      host.push(...await stepTimes(executor, workRoot, undefined))
      inside.push(...await stepTimes(executor, workRoot, rootfs))
    }
    const hostSpread = spread(host, 2)
    const insideSpread = spread(inside, 2)
    const list = await store.list()
    return {
      what: 'environments: making one, its disk, a lease on a cached one, and the cost a cached environment adds to a step over the host sandbox',
      environment: { name, hash: lease.hash, packages: lease.manifest.packages.length, os: lease.os },
      ...(create ? { making } : {}),
      diskMb: Object.fromEntries(list.map((e) => [e.requested.length > 0 ? `${e.name} + ${e.requested.join(', ')}` : e.name, round(e.sizeBytes / 1024 / 1024, 1)])),
      acquireMs: spread(acquire, 2),
      samples: { host: host.length, environment: inside.length },
      hostStepMs: hostSpread,
      environmentStepMs: insideSpread,
      addedPerStepMs: { p50: round(insideSpread.p50 - hostSpread.p50, 2), p95: round(insideSpread.p95 - hostSpread.p95, 2) },
      goal: { addedPerStepMsAtMost: 10, met: insideSpread.p50 - hostSpread.p50 <= 10 }
    }
  } finally {
    for (const lease of leases) await lease.release()
    await rm(scratch, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2)
  const dir = args.includes('--dir') ? args[args.indexOf('--dir') + 1] : undefined
  console.log(JSON.stringify(await benchEnvironments({ create: !args.includes('--no-create'), ...(dir !== undefined ? { dir } : {}) }), null, 2))
  process.exit(0)
}
