import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packDirectory } from '../src/archive/index.js'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { waitFor } from '../src/util/wait.js'
import { startNodeProcess, stopNodeProcess, type NodeProcess } from './node-process.js'
import { round, spread } from './stats.js'
import { getJson, postBlob, postJson } from './user.js'

/**
 * What a build that wants every core leaves to everything else on the
 * volunteer's machine. One `buildhaus-node join` process (1 slot, its own
 * mesh) builds a job whose step keeps `hogs` shell loops busy (a `make -j`
 * of a large package, as far as the scheduler can tell). Before (the
 * baseline, same run) and during it: `GET /api/health` one request after
 * another (the node's event loop: a short task after a sleep), and a fixed
 * CPU-bound program at the node's priority (a volunteer's own work, or the
 * node's sustained work: a catch-up, an audit).
 *
 *   npm run build && node dist/bench/busy.js
 *
 * Where the kernel groups each session (sched_autogroup_enabled = 1, as on
 * this machine), a sandbox, a session of its own, is weighed as one task
 * whatever its threads: the figures then barely move. Without autogroups
 * (a node run as a service whose cgroup has the CPU controller, or a kernel
 * without them) the build's nice value is what protects the rest.
 */
export interface BenchBusyOptions {
  /** Requests in each phase (default 200). */
  requests?: number
  /** Busy loops in the build (default 8 a core). */
  hogs?: number
  /** Runs of the CPU-bound program in each phase (default 5). */
  rounds?: number
}

const SPEC_NAME = 'bench-busy'

async function timeHealth (node: NodeProcess, count: number): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < count; i++) {
    const started = performance.now()
    await getJson<unknown>(node.api, '/api/health')
    times.push(performance.now() - started)
  }
  return times
}

/** Upload the job's source and submit it (one replica: one node would never match two); its id. */
async function submitJob (node: NodeProcess, scratch: string, spec: { name: string }): Promise<string> {
  const dir = join(scratch, spec.name)
  await mkdir(dir)
  await writeFile(join(dir, 'buildhaus.json'), JSON.stringify(spec))
  const source = await postBlob(node.api, node.token, (await packDirectory(dir)).bytes)
  return (await postJson<{ id: string }>(node.api, node.token, '/api/jobs', { spec, overrides: { replicas: 1 }, source })).id
}

/**
 * Wall time of a fixed amount of CPU work (a Node.js loop, ~0.3 s alone) in a
 * process of its own at the node's priority: what a volunteer's own program,
 * or the node's own sustained work (a catch-up, an audit), gets of the CPU.
 */
async function timeOwnWork (): Promise<number> {
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', 'let x = 0; for (let i = 0; i < 3e8; i++) x = (x + i) % 1000003; if (x < 0) console.log(x)'], { stdio: 'ignore' })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code === 0) resolve()
      else reject(new Error(`the work exited with ${String(code)}`))
    })
  })
  return performance.now() - started
}

async function timeOwnWorkRounds (rounds: number): Promise<number[]> {
  const times: number[] = []
  for (let i = 0; i < rounds; i++) times.push(await timeOwnWork())
  return times
}

async function health (node: NodeProcess): Promise<{ free: number }> {
  return await getJson<{ free: number }>(node.api, '/api/health')
}

/** The nice values (field 19 of stat) of the processes below `pid` whose command is `sh`: the build's loops. */
async function niceOfShellsBelow (pid: number): Promise<number[]> {
  const found: number[] = []
  const visit = async (at: number, depth: number): Promise<void> => {
    if (depth > 12) return
    const stat = await readFile(`/proc/${at}/stat`, 'utf8').catch(() => undefined)
    if (stat !== undefined && stat.includes('(sh)')) found.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]))
    const tasks = await readdir(`/proc/${at}/task`).catch(() => [] as string[])
    for (const task of tasks) {
      const children = await readFile(`/proc/${at}/task/${task}/children`, 'utf8').catch(() => '')
      for (const child of children.split(' ').filter((c) => c.trim() !== '')) await visit(Number(child), depth + 1)
    }
  }
  await visit(pid, 0)
  return found
}

export async function benchBusy (options: BenchBusyOptions = {}): Promise<Record<string, unknown>> {
  const requests = options.requests ?? 200
  const hogs = options.hogs ?? 8 * availableParallelism()
  const rounds = options.rounds ?? 5
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-busy-'))
  let node: NodeProcess | undefined
  try {
    const mesh = join(scratch, 'mesh.json')
    await foundMeshFor([join(scratch, 'node-0')], mesh, { name: 'bench-busy' })
    node = await startNodeProcess(scratch, 0, undefined, 1, mesh)
    progress('idle: the baseline')
    await timeHealth(node, 20)
    const idle = await timeHealth(node, requests)
    const idleWork = await timeOwnWorkRounds(rounds)

    // The build: `hogs` busy loops for as long as the measure needs (it is cancelled after).
    const spec = { name: SPEC_NAME, steps: [{ name: 'hog', run: `n=0; while [ $n -lt ${hogs} ]; do (while :; do :; done) & n=$((n+1)); done; sleep 300` }], timeout: 600 }
    const jobId = await submitJob(node, scratch, spec)
    progress(`a build of ${hogs} busy loops`)
    const started = node
    await waitFor(async () => (await health(started)).free === 0, { timeoutMs: 60_000, intervalMs: 50, what: 'the node to run the build' })
    let nice: number[] = []
    await waitFor(async () => {
      nice = await niceOfShellsBelow(started.child.pid!)
      return nice.length >= hogs
    }, { timeoutMs: 60_000, intervalMs: 50, what: `the build's ${hogs} loops to run` })
    const busy = await timeHealth(node, requests)
    const busyWork = await timeOwnWorkRounds(rounds)
    const load = loadavg()[0]!
    await postJson(node.api, node.token, `/api/jobs/${jobId}/cancel`, {}, 200)
    await waitFor(async () => (await health(started)).free === 1, { timeoutMs: 60_000, intervalMs: 100, what: 'the cancelled build to end' })
    const idleSpread = spread(idle)
    const busySpread = spread(busy)
    return {
      what: `GET /api/health of one \`buildhaus-node join\` (1 slot), ${requests} one after another: idle, then while it builds a job of ${hogs} busy shell loops`,
      cpus: availableParallelism(),
      // With autogroups the kernel already weighs the build's session as one: the nice value then matters within it only.
      schedAutogroup: (await readFile('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').catch(() => 'absent')).trim(),
      hogs,
      buildNice: [...new Set(nice)].sort((a, b) => a - b),
      loadavgDuringBuild: round(load, 2),
      idleMs: { ...idleSpread, max: round(Math.max(...idle)) },
      duringBuildMs: { ...busySpread, max: round(Math.max(...busy)) },
      baseline: idleSpread.p50,
      baselineWhat: 'the same requests to the same node while it is idle, same run',
      ratioP50: round(busySpread.p50 / idleSpread.p50, 2),
      ratioP95: round(busySpread.p95 / idleSpread.p95, 2),
      ownWork: {
        what: `a fixed CPU-bound program (a Node.js loop) in its own process at the node's priority, ${rounds} times: what a volunteer's own work, or the node's sustained work, gets of the CPU`,
        idleMs: spread(idleWork),
        duringBuildMs: spread(busyWork),
        slowdownP50: round(spread(busyWork).p50 / spread(idleWork).p50, 2)
      }
    }
  } finally {
    if (node !== undefined) await stopNodeProcess(node)
    await rm(scratch, { recursive: true, force: true })
  }
}

function progress (what: string): void {
  if (process.env.BENCH_QUIET === undefined) process.stderr.write(`bench/busy: ${what}\n`)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const requests = process.env.BENCH_REQUESTS === undefined ? undefined : Number(process.env.BENCH_REQUESTS)
  const hogs = process.env.BENCH_HOGS === undefined ? undefined : Number(process.env.BENCH_HOGS)
  console.log(JSON.stringify(await benchBusy({ ...(requests !== undefined ? { requests } : {}), ...(hogs !== undefined ? { hogs } : {}) }), null, 2))
}
