import { spawn } from 'node:child_process'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { EnvironmentStore, type EnvironmentLease } from '../src/environments/index.js'
import type { JobView } from '../src/jobs/index.js'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { SANDBOX_PATH } from '../src/sandbox/bwrap-args.js'
import { waitFor } from '../src/util/wait.js'
import { machineBusySeconds } from './machine-cpu.js'
import { ROOT, startNodeProcess, stopNodeProcess, type NodeProcess } from './node-process.js'
import { median, round } from './stats.js'

/**
 * Real workloads as users see them: a C program, a Python wheel and
 * Debian's GNU hello package, each in a named environment (debian-12 with
 * the packages its spec names). Each is submitted with `buildhaus-node
 * submit DIR --wait --json` to two `join` processes, timed from the
 * command's start to its exit with the verdict, with 1 replica and with 2
 * (both nodes build, and the verdict needs both to agree). Beside it, in
 * the same run and alternating with it, the anchor: the same steps in the
 * same root file system under a plain bwrap (no mesh, no log, no sandbox
 * policy, no artifact hashing), alone and two at once, which is what two
 * replicas cost this machine. The ratio is what buildhaus adds to a real
 * build; the breakdown (from the job's claims and results) says where.
 *
 *   node dist/bench/workloads.js [--rounds N] [--only c-program,python-wheel,debian-package] [--dir STORE] [--no-create]
 *
 * The environments come from `--dir` (default: the tests' shared store if
 * it holds debian-12, else the node's cache). A missing one is made from
 * Debian's archive (minutes of both cores), unless `--no-create`: then the
 * module says it skipped.
 */

export interface Workload {
  name: string
  /** The directory under examples/ submitted as it is, but for `spec`'s fields. */
  example: string
  /** Fields of buildhaus.json replaced: the environment, its packages. */
  spec: Record<string, unknown>
  /** A command run once in the copy before anything is timed (fetching sources). */
  prepare?: string[]
}

export const WORKLOADS: Workload[] = [
  // A C program in a named environment: the hello-c example, built with Debian 12's gcc.
  { name: 'c-program', example: 'hello-c', spec: { environment: 'debian-12', packages: ['gcc', 'libc6-dev'] } },
  { name: 'python-wheel', example: 'python-wheel', spec: { environment: 'debian-12' } },
  // Debian's own GNU hello source package, dpkg-buildpackage with its build dependencies.
  { name: 'debian-package', example: 'debian-hello', spec: {}, prepare: ['sh', 'get-source.sh', '.'] }
]

export interface WorkloadsBenchOptions {
  /** Alternating rounds of bare and mesh runs per workload (default 3). */
  rounds?: number
  only?: string[]
  dir?: string
  /** Make missing environments (default true). */
  create?: boolean
}

interface Spec { environment?: string, packages?: string[], steps: Array<{ name: string, run: string }> }

interface Timed { wallS: number, machineCpuS: number }

function say (line: string): void {
  process.stderr.write(`workloads: ${line}\n`)
}

/** The tests' shared store when it holds debian-12 (no making twice on a developer's machine), else the node's default cache. */
function defaultStore (): string {
  const shared = process.env.BUILDHAUS_TEST_ENVIRONMENTS ?? '/var/tmp/buildhaus-test-environments'
  return existsSync(join(shared, 'names', 'debian-12.json')) ? shared : '/var/cache/buildhaus/environments'
}

async function run (command: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr = (stderr + c).slice(-20_000) })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

/**
 * The anchor: each step under a plain bwrap in the environment's root
 * (read-only), the copy of the source at /build, fresh /tmp, /proc and
 * /dev, the same PATH and locale as a buildhaus step. Nothing else: as the
 * bench's own user (root, where buildhaus builds as an unprivileged user in
 * a user namespace), the more favourable to the anchor.
 */
async function bareBuild (root: string, source: string, workDir: string, spec: Spec): Promise<void> {
  await cp(source, workDir, { recursive: true })
  for (const step of spec.steps) {
    const args = ['--unshare-all', '--die-with-parent', '--ro-bind', root, '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--tmpfs', '/var/tmp',
      '--bind', workDir, '/build', '--chdir', '/build', '--clearenv', '--setenv', 'PATH', SANDBOX_PATH, '--setenv', 'HOME', '/tmp',
      '--setenv', 'LANG', 'C.UTF-8', '--setenv', 'TZ', 'UTC', '--', '/bin/sh', '-c', step.run]
    const result = await run('bwrap', args, workDir, 30 * 60_000)
    if (result.code !== 0) throw new Error(`the bare step "${step.name}" exited with ${String(result.code)}: ${result.stderr.slice(-1_000)}`)
  }
}

/** `copies` bare builds at once, each in its own copy; wall time until the last ends. */
async function timeBare (root: string, source: string, scratch: string, spec: Spec, copies: number): Promise<Timed> {
  const dirs = Array.from({ length: copies }, (_, i) => join(scratch, `bare-${Date.now()}-${i}`))
  const cpuBefore = await machineBusySeconds()
  const began = performance.now()
  await Promise.all(dirs.map(async (dir) => { await bareBuild(root, source, dir, spec) }))
  const wallS = (performance.now() - began) / 1000
  const machineCpuS = await machineBusySeconds() - cpuBefore
  for (const dir of dirs) await rm(dir, { recursive: true, force: true })
  return { wallS: round(wallS, 2), machineCpuS: round(machineCpuS, 2) }
}

interface MeshRun extends Timed {
  verdict: string
  phases: Record<string, number>
}

/** `buildhaus-node submit DIR --wait --json`, as a user runs it on the first node's machine. */
async function timeMesh (home: string, source: string, replicas: number, timeoutS: number): Promise<MeshRun> {
  const cpuBefore = await machineBusySeconds()
  const startedAt = Date.now()
  const began = performance.now()
  const result = await run(process.execPath, [join(ROOT, 'bin', 'buildhaus-node.js'), 'submit', source, '--home', home, '--replicas', String(replicas), '--wait', '--json'], source, (timeoutS + 300) * 1000)
  const wallS = (performance.now() - began) / 1000
  const endedAt = Date.now()
  const machineCpuS = await machineBusySeconds() - cpuBefore
  if (result.code !== 0) throw new Error(`submit --wait exited with ${String(result.code)}: ${result.stderr.slice(-1_000)} ${result.stdout.slice(-1_000)}`)
  const job = JSON.parse(result.stdout) as JobView
  return { wallS: round(wallS, 2), machineCpuS: round(machineCpuS, 2), verdict: job.verdict, phases: phasesOf(job, startedAt, endedAt) }
}

/**
 * Where a job's time went, from its entries' own times (one machine, one
 * clock): the CLI's packing and upload up to the job entry, the claims,
 * the builder's preparation (source, environment, workspace) up to the
 * sandbox's start, the build, hashing and publishing the result, and the
 * verdict reaching the CLI. With 2 replicas, the later builder's.
 */
function phasesOf (job: JobView, startedAt: number, endedAt: number): Record<string, number> {
  const platform = job.platforms[0]!
  const results = platform.results.filter((r) => r.status !== 'refused')
  const lastClaim = Math.max(...platform.claims.map((c) => c.time))
  const last = results.reduce((a, b) => (b.time > a.time ? b : a))
  const stepsMs = last.steps.reduce((sum, s) => sum + s.ms, 0)
  return {
    submitToJobEntryMs: job.time - startedAt,
    jobEntryToClaimMs: lastClaim - job.time,
    claimToSandboxStartMs: last.start - lastClaim,
    stepsMs,
    sandboxAroundStepsMs: last.end - last.start - stepsMs,
    sandboxEndToResultMs: last.time - last.end,
    resultToVerdictExitMs: endedAt - last.time
  }
}

async function prepareSource (workload: Workload, scratch: string): Promise<{ dir: string, spec: Spec, timeoutS: number }> {
  const dir = join(scratch, `source-${workload.name}`)
  await cp(join(ROOT, 'examples', workload.example), dir, { recursive: true })
  const specFile = join(dir, 'buildhaus.json')
  const spec = { ...JSON.parse(await readFile(specFile, 'utf8')) as Record<string, unknown>, ...workload.spec }
  await writeFile(specFile, `${JSON.stringify(spec, null, 2)}\n`)
  if (workload.prepare !== undefined) {
    const result = await run(workload.prepare[0]!, workload.prepare.slice(1), dir, 300_000)
    if (result.code !== 0) throw new Error(`preparing ${workload.name} failed: ${result.stderr.slice(-1_000)}`)
  }
  return { dir, spec: spec as unknown as Spec, timeoutS: Number(spec.timeout ?? 1800) }
}

/**
 * A lease on the workload's environment. Without `create`, only one already
 * made: the store would otherwise install a missing package set (minutes,
 * and the archive) even when asked not to make the base.
 */
async function acquire (store: EnvironmentStore, spec: Spec, create: boolean): Promise<EnvironmentLease | string> {
  const name = spec.environment!
  const packages = spec.packages ?? []
  if (!create) {
    const base = await store.lookup(name)
    const wanted = [...packages].sort().join(' ')
    const made = base !== undefined && (packages.length === 0 ||
      (await store.list()).some((e) => e.name === name && e.base === base.hash && [...e.requested].sort().join(' ') === wanted))
    if (!made) return `no ${name}${packages.length > 0 ? ` + ${packages.join(', ')}` : ''} in ${store.dir}; the quick run makes none (the full run does)`
  }
  return await store.acquire({ name, packages, create, onLine: (line) => { say(`${name}: ${line}`) } })
}

function summary (samples: Timed[]): Timed {
  return { wallS: round(median(samples.map((s) => s.wallS)), 2), machineCpuS: round(median(samples.map((s) => s.machineCpuS)), 2) }
}

function medianPhases (runs: MeshRun[]): Record<string, number> {
  const keys = Object.keys(runs[0]!.phases)
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r.phases[k]!))]))
}

export async function benchWorkloads (options: WorkloadsBenchOptions = {}): Promise<Record<string, unknown>> {
  const rounds = options.rounds ?? 3
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`workloads: rounds must be a whole number from 1, received ${String(options.rounds)}`)
  const names = WORKLOADS.map((w) => w.name)
  const unknown = (options.only ?? []).filter((n) => !names.includes(n))
  if (unknown.length > 0 || options.only?.length === 0) throw new RangeError(`workloads: unknown workload ${unknown.join(', ') || '(none given)'}; choose among ${names.join(', ')}`)
  const create = options.create ?? true
  const dir = options.dir ?? defaultStore()
  const chosen = WORKLOADS.filter((w) => options.only === undefined || options.only.includes(w.name))
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-workloads-'))
  const store = await EnvironmentStore.open({ dir, maxBytes: 64 * 1024 ** 3 })
  const nodes: NodeProcess[] = []
  const leases: EnvironmentLease[] = []
  try {
    const sources = []
    for (const workload of chosen) {
      const source = await prepareSource(workload, scratch)
      const lease = await acquire(store, source.spec, create)
      if (typeof lease === 'string') return { skipped: lease, store: dir }
      leases.push(lease)
      sources.push({ workload, ...source, root: lease.root })
    }

    const mesh = join(scratch, 'mesh.json')
    await foundMeshFor([join(scratch, 'node-0'), join(scratch, 'node-1')], mesh, { name: 'bench-workloads' })
    const joinArgs = ['--environment', 'debian-12', '--environment-dir', dir, '--environment-cache', String(64 * 1024)]
    for (let i = 0; i < 2; i++) nodes.push(await startNodeProcess(scratch, i, nodes[0]?.listen[0], 1, mesh, { joinArgs }))
    await waitFor(async () => {
      for (const node of nodes) {
        const health = await (await fetch(new URL('/api/health', node.api))).json() as { environments?: string[], peers?: number }
        if (health.environments?.includes('debian-12') !== true) return false
      }
      const peers = await (await fetch(new URL('/api/peers', nodes[0]!.api))).json() as { peers: unknown[] }
      return peers.peers.length >= 2
    }, { timeoutMs: 20 * 60_000, intervalMs: 500, what: 'both nodes to offer debian-12 and see each other' })

    const figures: Record<string, unknown> = {}
    for (const { workload, dir: source, spec, timeoutS, root } of sources) {
      const home = join(scratch, 'node-0')
      // One of each, untimed: the first run of a workload fills caches (the environment's pages, the nodes' source blobs) that every later one finds warm.
      say(`${workload.name}: warming up`)
      await timeBare(root, source, scratch, spec, 1)
      await timeMesh(home, source, 1, timeoutS)
      const bare1: Timed[] = []
      const bare2: Timed[] = []
      const mesh1: MeshRun[] = []
      const mesh2: MeshRun[] = []
      for (let r = 0; r < rounds; r++) {
        // Alternate which goes first, so that a drift in the machine's speed falls on both.
        const order = r % 2 === 0 ? ['bare', 'mesh'] : ['mesh', 'bare']
        for (const kind of order) {
          if (kind === 'bare') {
            bare1.push(await timeBare(root, source, scratch, spec, 1))
            bare2.push(await timeBare(root, source, scratch, spec, 2))
          } else {
            mesh1.push(await timeMesh(home, source, 1, timeoutS))
            mesh2.push(await timeMesh(home, source, 2, timeoutS))
          }
        }
        say(`${workload.name}: round ${r + 1}/${rounds}: bare ${bare1.at(-1)!.wallS} s, two at once ${bare2.at(-1)!.wallS} s; mesh 1 replica ${mesh1.at(-1)!.wallS} s, 2 replicas ${mesh2.at(-1)!.wallS} s`)
      }
      const verdicts = [...mesh1, ...mesh2].map((m) => m.verdict)
      const b1 = summary(bare1)
      const b2 = summary(bare2)
      const m1 = summary(mesh1)
      const m2 = summary(mesh2)
      figures[workload.name] = {
        environment: `${spec.environment} + ${(spec.packages ?? []).join(', ')}`,
        steps: spec.steps.map((s) => s.run),
        bare: { alone: b1, twoAtOnce: b2, runs: { alone: bare1, twoAtOnce: bare2 } },
        mesh: { replicas1: { ...m1, phases: medianPhases(mesh1) }, replicas2: { ...m2, phases: medianPhases(mesh2) }, runs: { replicas1: mesh1, replicas2: mesh2 } },
        verdicts: [...new Set(verdicts)],
        // The figures users compare: the verdict's wall time over the bare build's, CPU likewise (medians).
        ratio: {
          replicas1Wall: round(m1.wallS / b1.wallS, 2),
          replicas2Wall: round(m2.wallS / b2.wallS, 2),
          replicas1Cpu: round(m1.machineCpuS / b1.machineCpuS, 2),
          replicas2Cpu: round(m2.machineCpuS / b2.machineCpuS, 2)
        },
        addedS: { replicas1: round(m1.wallS - b1.wallS, 2), replicas2: round(m2.wallS - b2.wallS, 2) }
      }
    }
    return { store: dir, rounds, workloads: figures }
  } finally {
    for (const node of nodes) await stopNodeProcess(node).catch(() => {})
    for (const lease of leases) await lease.release()
    await rm(scratch, { recursive: true, force: true }).catch(() => {})
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    strict: true,
    options: { rounds: { type: 'string' }, only: { type: 'string' }, dir: { type: 'string' }, 'no-create': { type: 'boolean', default: false } }
  })
  benchWorkloads({
    ...(values.rounds !== undefined ? { rounds: Number(values.rounds) } : {}),
    ...(values.only !== undefined ? { only: values.only.split(',').filter((n) => n !== '') } : {}),
    ...(values.dir !== undefined ? { dir: values.dir } : {}),
    create: !values['no-create']
  }).then((figures) => { process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`); process.exit(0) }, (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exit(1)
  })
}
