import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { packDirectory } from '../src/archive/index.js'
import { entryIdOf, unsignedOf } from '../src/ledger/entry.js'
import type { JobsResponse } from '../src/node/api/routes/jobs.js'
import type { HealthResponse } from '../src/node/api/types.js'
import { NodeClient } from '../src/node/cli/client.js'
import { FINAL_VERDICTS } from '../src/node/cli/watch.js'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { delay, waitFor } from '../src/util/wait.js'
import { startPerfRecord, stopChild } from './child-process.js'
import { inGroup, makeCpuGroup, type CpuGroup } from './cpu-group.js'
import { percentile, round } from './stats.js'

/**
 * Many nodes on one machine: N full nodes spread over H processes
 * (bench/cluster-host.ts, N/H nodes each, one shared sandbox executor per
 * process), joined into one mesh on loopback. Measures how long the mesh
 * takes to form, how long J jobs (2 replicas each, submitted round-robin
 * through different nodes) take until every node shows every job verified,
 * how long until every node holds the same log, per-job latency read from
 * the log, duplicate builds, memory and CPU — beside the same run on a
 * 3-node cluster in one process, measured just before (the baseline).
 */
export interface BenchClusterOptions {
  nodes?: number
  hosts?: number
  jobs?: number
  /** Nodes of the baseline run (one host). */
  baselineNodes?: number
  sandbox?: 'bubblewrap' | 'none'
  /** Skip the baseline (the soak test runs only the big cluster). */
  baseline?: boolean
  /** Deadline of each phase (formation, jobs, convergence). */
  phaseTimeoutMs?: number
  /**
   * Presence heartbeat interval of the big run's nodes (default: the nodes' own, 2 s). Heartbeats
   * are most of an idle mesh's CPU (every node hears every other), so this shows what a slower
   * heartbeat would buy at this size.
   */
  presenceIntervalMs?: number
}

const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../..' : '..', import.meta.url))
const HOST = join(ROOT, 'dist', 'bench', 'cluster-host.js')
const REPLICAS = 2
/**
 * How long one submission may take. Fifty nodes on two busy cores can hold an
 * API call for tens of seconds (event-loop delay p99 of seconds); polls just
 * try again, a submission cannot.
 */
const SUBMIT_TIMEOUT_MS = 180_000
/** How long the formed mesh idles while its CPU use is measured. */
const IDLE_SAMPLE_MS = 10_000

export interface HostProcess {
  child: ChildProcess
  nodes: Array<{ index: number, peerId: string, author: string, listen: string[], api: string, home: string }>
  stderr: string
  /** From its last line: how late its timers fired between ready and stop. */
  eventLoopDelayMs?: { p50: number, p99: number, max: number }
  /** Waiting for the answer to SIGUSR2 (BENCH_COUNTERS). */
  onCounters?: (counters: Record<string, number>) => void
  /** The cgroup every host of its run was started in (bench/cpu-group.ts): their CPU, sandboxes included, whoever reaped them. */
  cpuGroup?: CpuGroup
}

export interface ClusterRun {
  nodes: number
  hosts: number
  jobs: number
  startMs: number
  /** How long each host took to start its nodes. */
  hostStartMs: number[]
  formationMs: number
  /** Submitting the jobs one after another through the nodes' HTTP APIs (part of jobsMs): how responsive the APIs are. */
  submitMs: number
  jobsMs: number
  convergenceMs: number
  entries: number
  latencyP50Ms: number
  latencyP95Ms: number
  duplicateResults: number
  latencyPhases?: LatencyPhases
  /** CPU cores the formed, idle mesh uses per node (host processes, over IDLE_SAMPLE_MS). */
  idleCoresPerNode: number
  rssMbPerNode: number
  rssMbPerHost: number
  /** CPU of every host from the first submission until the logs converged. */
  cpuSeconds: number
  /** How the CPU figures were counted: the hosts' cgroup, or /proc (which misses some of the sandboxes' CPU). */
  cpuCountedBy: string
  /** How long that took (s): the idle cost of that span is idleCoresPerNode × nodes × cpuSpanS. */
  cpuSpanS: number
  stopMs: number
  /** The worst host's event-loop delay (timer lateness) from ready to stop: above a second or so, heartbeats and leases suffer. */
  eventLoopDelayMs?: { p50: number, p99: number, max: number }
  completed: boolean
  converged: boolean
  /**
   * After the burst: jobs submitted one at a time, each once the previous one was verified, on
   * the same formed mesh: the latency of one job on a mesh that is not saturated, as a package
   * author submitting alone sees it.
   */
  oneAtATime?: OneAtATime
  /** When the jobs phase timed out: the jobs a node still did not show verified, with their verdicts. */
  notVerified?: Array<{ name: string, verdict: string, reason?: string }>
  /**
   * BENCH_COUNTERS: what the nodes counted from the first submission until the logs converged
   * (sums over all nodes, bench/cluster-host.ts), each also per job; the bench's own HTTP requests
   * in that span; and, with BENCH_POLL_COST, the CPU of one round of GET /api/jobs on every node.
   */
  accounting?: { counters: Record<string, number>, perJob: Record<string, number>, benchRequests: number, pollRoundCpuS?: number, hostWindowsUs: Array<[number, number]> }
  error?: string
}

export interface OneAtATime {
  jobs: number
  /** From the job entry's time to the result that completed its replicas (the log's clocks, one machine). */
  latencyP50Ms: number
  latencyMaxMs: number
  /** From the POST's start until the submitting node's `GET /api/jobs/:id` said verified (polled every POLL_MS). */
  seenP50Ms: number
  seenMaxMs: number
  /** CPU of every host over the phase, less the idle mesh's over the same span, per job. */
  cpuSecondsPerJobAboveIdle: number
  cpuSpanS: number
  /** The phase on the monotonic clock in µs, the clock of --cpu-prof: `profile-summary.js DIR --window FROM,TO` keeps its samples. */
  windowUs: [number, number]
}

/** How many jobs the one-at-a-time phase submits (BENCH_ONE_AT_A_TIME overrides; 0 skips it). */
const ONE_AT_A_TIME_JOBS = 5
/** How often that phase asks the submitting node whether its job is verified. */
const POLL_MS = 50

/** BENCH_COUNTERS: every host's counters now (sums over its nodes). */
async function countersOf (hosts: HostProcess[]): Promise<Array<Record<string, number>>> {
  return await Promise.all(hosts.map(async (h) => await new Promise<Record<string, number>>((resolve) => {
    h.onCounters = (c) => { h.onCounters = undefined; resolve(c) }
    h.child.kill('SIGUSR2')
  })))
}

let benchRequests = 0

export async function runCluster (options: { nodes: number, hosts: number, jobs: number, sandbox?: 'bubblewrap' | 'none', phaseTimeoutMs?: number, presenceIntervalMs?: number, label?: string }): Promise<ClusterRun> {
  const { nodes: total, jobs } = options
  const hosts = Math.min(options.hosts, total)
  const perHost = Math.ceil(total / hosts)
  const phaseTimeoutMs = options.phaseTimeoutMs ?? 10 * 60_000
  const label = options.label ?? `${total} nodes`
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-cluster-'))
  const running: HostProcess[] = []
  let recorder: { stop: () => Promise<void> } | undefined
  const group = await makeCpuGroup(`buildhaus-bench-cluster-${process.pid}-${label.replace(/[^a-z0-9]+/gi, '-')}`)
  const cpuGroup = 'unavailable' in group ? undefined : group
  const run: ClusterRun = {
    nodes: total, hosts, jobs, startMs: NaN, hostStartMs: [], formationMs: NaN, submitMs: NaN, jobsMs: NaN, convergenceMs: NaN, entries: 0, latencyP50Ms: NaN, latencyP95Ms: NaN,
    duplicateResults: NaN, idleCoresPerNode: NaN, rssMbPerNode: NaN, rssMbPerHost: NaN, cpuSeconds: NaN, cpuSpanS: NaN, stopMs: NaN, completed: false, converged: false,
    cpuCountedBy: cpuGroup !== undefined ? 'a cgroup v1 cpuacct group of the hosts (their sandboxes included, whoever reaped them)' : `/proc only (${(group as { unavailable: string }).unavailable}): the spawn helpers until they exit, and sandboxes reaped by the machine's init, are missed`
  }
  try {
    // Every node of the cluster is a founder of its mesh (keys made now, in each node's home), so
    // that the cluster runs in the default mode: only members' claims and results count.
    const meshFile = join(scratch, 'mesh.json')
    await foundMeshFor(Array.from({ length: total }, (_, i) => join(scratch, `node-${i}`)), meshFile, { name: 'bench-cluster' })
    const began = performance.now()
    for (let h = 0; h < hosts; h++) {
      const first = h * perHost
      const count = Math.min(perHost, total - first)
      if (count <= 0) break
      // Join through the first node of the previous host (a chain of hubs, none serving everyone);
      // inside a host the others join through its first node.
      const bootstrap = h === 0 ? [] : [running[h - 1]!.nodes[0]!.listen[0]!]
      progress(`${label}: host ${h + 1}/${hosts} starting nodes ${first}..${first + count - 1}`)
      const hostStarted = performance.now()
      running.push(await startHost({ dir: scratch, first, count, bootstrap, sandbox: options.sandbox ?? 'bubblewrap', mesh: meshFile, ...(options.presenceIntervalMs !== undefined ? { presenceIntervalMs: options.presenceIntervalMs } : {}) }, phaseTimeoutMs, cpuGroup))
      run.hostStartMs.push(Math.round(performance.now() - hostStarted))
    }
    run.startMs = performance.now() - began
    const all = running.flatMap((h) => h.nodes)
    const clients = all.map((n) => clientOf(n, 30_000))

    progress(`${label}: waiting for every node to list ${total - 1} members`)
    await waitFor(async () => {
      const health = await Promise.all(clients.map(async (c) => await c.getJson<HealthResponse>('/api/health')))
      return health.every((h) => h.peers === total - 1)
    }, { timeoutMs: phaseTimeoutMs, intervalMs: 500, what: `${total} nodes to list each other` })
    run.formationMs = performance.now() - began
    // Idle cost: what the formed mesh burns doing nothing but presence, gossip upkeep and sync rounds.
    const idleFrom = await cpuSecondsOf(running)
    const idleStarted = performance.now()
    await delay(IDLE_SAMPLE_MS)
    run.idleCoresPerNode = round(((await cpuSecondsOf(running)) - idleFrom) / ((performance.now() - idleStarted) / 1000) / total, 4)
    const counting = process.env.BENCH_COUNTERS !== undefined
    const countersBefore = counting ? await countersOf(running) : []
    const cpuBefore = await cpuSecondsOf(running)
    const cpuFrom = performance.now()
    benchRequests = 0

    recorder = label.startsWith('baseline') ? undefined : startPerfRecord(running.map((h) => h.child.pid!), 499)
    progress(`${label}: submitting ${jobs} jobs round-robin`)
    const source = await jobSource(scratch)
    // A submission is not retried (it could submit twice): give an overloaded node's API longer than a poll.
    const submitters = all.map((n) => clientOf(n, SUBMIT_TIMEOUT_MS))
    const submittedAt = performance.now()
    const ids: string[] = []
    for (let j = 0; j < jobs; j++) {
      const client = submitters[(j * 7) % submitters.length]!
      const stored = await client.postBytes<{ hash: string, size: number }>('/api/blobs', source.bytes)
      const job = await client.postJson<{ id: string }>('/api/jobs', {
        spec: { ...source.spec, name: `cluster-${j}` },
        overrides: { replicas: REPLICAS },
        source: stored
      })
      ids.push(job.id)
    }
    run.submitMs = performance.now() - submittedAt
    progress(`${label}: waiting for every node to show every job verified`)
    // What the last node that was not done showed, to say why if the deadline passes.
    let notVerified: Array<{ name: string, verdict: string, reason?: string }> = []
    await waitFor(async () => {
      for (const client of clients) {
        benchRequests++
        const { jobs: list } = await client.getJson<JobsResponse>('/api/jobs')
        const mine = list.filter((j) => ids.includes(j.id))
        if (mine.length === ids.length && mine.every((j) => j.verdict === 'verified')) continue
        notVerified = mine.filter((j) => j.verdict !== 'verified').map((j) => ({ name: j.name, verdict: j.verdict, ...(j.reason !== undefined ? { reason: j.reason } : {}) }))
        return false
      }
      return true
    }, { timeoutMs: phaseTimeoutMs, intervalMs: 1_000, what: `${jobs} jobs verified on ${total} nodes` }).catch((err: unknown) => {
      run.notVerified = notVerified
      throw err
    })
    run.jobsMs = performance.now() - submittedAt
    run.completed = true

    progress(`${label}: waiting for every node to hold the same log`)
    let common: string[] = []
    await waitFor(async () => {
      benchRequests += all.length
      const logs = await Promise.all(all.map(async (n) => await fetchLog(n.api)))
      const reference = new Set(logs[0])
      if (!logs.every((log) => log.length === reference.size && new Set(log).size === reference.size && log.every((line) => reference.has(line)))) return false
      common = logs[0]!
      return true
    }, { timeoutMs: phaseTimeoutMs, intervalMs: 1_000, what: `${total} nodes to hold the same log` })
    run.convergenceMs = performance.now() - submittedAt
    run.converged = true
    await recorder?.stop()
    run.cpuSeconds = round((await cpuSecondsOf(running)) - cpuBefore, 1)
    run.cpuSpanS = round((performance.now() - cpuFrom) / 1000, 1)
    if (counting) {
      const after = await countersOf(running)
      const counters: Record<string, number> = {}
      for (const [h, snapshot] of after.entries()) {
        for (const [key, value] of Object.entries(snapshot)) {
          if (key === 'hrtimeUs') continue
          // Gauges (connections, mesh peers) as they are at the end; counters as the difference.
          const gauge = key.startsWith('net.')
          counters[key] = (counters[key] ?? 0) + value - (gauge ? 0 : (countersBefore[h]![key] ?? 0))
        }
      }
      const perJob = Object.fromEntries(Object.entries(counters).filter(([k]) => !k.startsWith('net.')).map(([k, v]) => [k, round(v / jobs, 1)]))
      run.accounting = { counters, perJob, benchRequests, hostWindowsUs: after.map((a, h) => [countersBefore[h]!.hrtimeUs!, a.hrtimeUs!]) }
      if (process.env.BENCH_POLL_COST !== undefined) {
        // What one round of the bench's poll (GET /api/jobs on every node, one after another) costs the nodes.
        const rounds = 10
        const from = await cpuSecondsOf(running)
        const started = performance.now()
        for (let r = 0; r < rounds; r++) for (const client of clients) await client.getJson<JobsResponse>('/api/jobs')
        const spanS = (performance.now() - started) / 1000
        run.accounting.pollRoundCpuS = round(((await cpuSecondsOf(running)) - from - run.idleCoresPerNode * total * spanS) / rounds, 3)
      }
    }
    run.entries = common.length
    const timing = jobTimings(common, new Set(ids))
    if (process.env.BENCH_TIMELINES !== undefined) printTimelines(common, ids.slice(0, 5))
    run.latencyP50Ms = percentile(timing.latencies, 0.5)
    run.latencyP95Ms = percentile(timing.latencies, 0.95)
    run.duplicateResults = timing.duplicates
    run.latencyPhases = timing.phases
    const singles = Number(process.env.BENCH_ONE_AT_A_TIME ?? ONE_AT_A_TIME_JOBS)
    if (singles > 0) {
      progress(`${label}: ${singles} more jobs, one at a time`)
      run.oneAtATime = await oneAtATime(singles, running, submitters, source, run.idleCoresPerNode * total, phaseTimeoutMs)
    }
    const rss = await Promise.all(running.map(async (h) => await rssMb(h.child.pid!)))
    run.rssMbPerHost = round(rss.reduce((a, b) => a + b, 0) / rss.length, 1)
    run.rssMbPerNode = round(rss.reduce((a, b) => a + b, 0) / total, 1)
  } catch (err) {
    run.error = err instanceof Error ? err.message : String(err)
    const tails = running.map((h) => h.stderr.trim().split('\n').slice(-3).join(' | ')).filter((t) => t !== '')
    if (tails.length > 0) run.error += ` (host stderr: ${tails.join(' || ').slice(0, 1000)})`
  } finally {
    await recorder?.stop()
    const stopping = performance.now()
    await Promise.all(running.map(async (h) => { await stopHost(h) }))
    run.stopMs = performance.now() - stopping
    await cpuGroup?.remove().catch((err: unknown) => { progress(`${label}: cannot remove the hosts' cgroup: ${String(err)}`) })
    const delays = running.map((h) => h.eventLoopDelayMs).filter((d) => d !== undefined)
    if (delays.length > 0) run.eventLoopDelayMs = { p50: Math.max(...delays.map((d) => d.p50)), p99: Math.max(...delays.map((d) => d.p99)), max: Math.max(...delays.map((d) => d.max)) }
    await rm(scratch, { recursive: true, force: true })
  }
  for (const key of ['startMs', 'formationMs', 'submitMs', 'jobsMs', 'convergenceMs', 'stopMs'] as const) run[key] = Math.round(run[key])
  return run
}

/**
 * Submit `count` jobs one after another through different nodes, each once the previous one's
 * submitting node shows it verified. The jobs of the burst are all verified and the logs converged
 * before this starts, so each job has the mesh to itself.
 */
async function oneAtATime (count: number, running: HostProcess[], submitters: NodeClient[], source: { bytes: Uint8Array, spec: Record<string, unknown> }, idleCores: number, timeoutMs: number): Promise<OneAtATime> {
  const ids = new Set<string>()
  const seen: number[] = []
  const cpuFrom = await cpuSecondsOf(running)
  const from = performance.now()
  const fromUs = monotonicUs()
  for (let j = 0; j < count; j++) {
    const client = submitters[(j * 11 + 3) % submitters.length]!
    const started = performance.now()
    const stored = await client.postBytes<{ hash: string, size: number }>('/api/blobs', source.bytes)
    const job = await client.postJson<{ id: string }>('/api/jobs', { spec: { ...source.spec, name: `single-${j}` }, overrides: { replicas: REPLICAS }, source: stored })
    ids.add(job.id)
    let ended: { verdict: string, reason?: string } = { verdict: 'pending' }
    await waitFor(async () => {
      ended = await client.getJson<{ verdict: string, reason?: string }>(`/api/jobs/${job.id}`)
      // A final verdict will not change: a wrong one is said now rather than at the deadline.
      return FINAL_VERDICTS.has(ended.verdict)
    }, { timeoutMs, intervalMs: POLL_MS, what: `a final verdict for job single-${j} on the node it was submitted to` })
    if (ended.verdict !== 'verified') throw new Error(`job single-${j} (${job.id}) ended ${ended.verdict}${ended.reason !== undefined ? `: ${ended.reason}` : ''}, not verified`)
    seen.push(performance.now() - started)
  }
  const cpuSpanS = (performance.now() - from) / 1000
  const windowUs: [number, number] = [fromUs, monotonicUs()]
  const cpu = (await cpuSecondsOf(running)) - cpuFrom
  // Read the latencies from one node's log once gossip has brought it every result.
  let latencies: number[] = []
  await waitFor(async () => {
    const log = await fetchLog(running[0]!.nodes[0]!.api)
    latencies = jobTimings(log, ids).latencies
    if (latencies.length === count && process.env.BENCH_TIMELINES !== undefined) printTimelines(log, [...ids])
    return latencies.length === count
  }, { timeoutMs, intervalMs: 500, what: `node 0 to hold the results of the ${count} jobs submitted one at a time` })
  seen.sort((a, b) => a - b)
  return {
    jobs: count,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyMaxMs: latencies.at(-1)!,
    seenP50Ms: Math.round(percentile(seen, 0.5)),
    seenMaxMs: Math.round(seen.at(-1)!),
    cpuSecondsPerJobAboveIdle: round((cpu - idleCores * cpuSpanS) / count, 2),
    cpuSpanS: round(cpuSpanS, 1),
    windowUs
  }
}

/** The machine's monotonic clock in µs (shared by every process here, and the clock of V8's CPU profiles). */
function monotonicUs (): number {
  return Number(process.hrtime.bigint() / 1000n)
}

interface Figure { value: number, baseline: number, ratio: number }

function figure (value: number, baseline: number): Figure {
  return { value, baseline, ratio: round(value / baseline, 2) }
}

/** The big run beside the baseline run; every figure as `{ value, baseline, ratio }`. */
export async function benchCluster (options: BenchClusterOptions = {}): Promise<Record<string, unknown>> {
  const nodes = options.nodes ?? 50
  const hosts = options.hosts ?? 5
  const jobs = options.jobs ?? 20
  const baselineNodes = options.baselineNodes ?? 3
  const common = {
    jobs,
    ...(options.sandbox !== undefined ? { sandbox: options.sandbox } : {}),
    ...(options.phaseTimeoutMs !== undefined ? { phaseTimeoutMs: options.phaseTimeoutMs } : {})
  }
  const baseline = options.baseline === false ? undefined : await runCluster({ nodes: baselineNodes, hosts: 1, label: `baseline ${baselineNodes} nodes`, ...common })
  const big = await runCluster({ nodes, hosts, label: `${nodes} nodes`, ...common, ...(options.presenceIntervalMs !== undefined ? { presenceIntervalMs: options.presenceIntervalMs } : {}) })
  const result: Record<string, unknown> = {
    what: `${nodes} full nodes in ${big.hosts} processes (${Math.ceil(nodes / big.hosts)} per process, one shared sandbox executor each) on loopback, ${jobs} jobs × ${REPLICAS} replicas; baseline: the same jobs on ${baselineNodes} nodes in one process, same run`,
    cpus: availableParallelism(),
    nodes,
    hosts: big.hosts,
    nodesPerHost: Math.ceil(nodes / big.hosts),
    jobs,
    replicas: REPLICAS,
    presenceIntervalMs: options.presenceIntervalMs ?? 'default (2 s)',
    completed: big.completed,
    converged: big.converged,
    run: big,
    ...(baseline !== undefined ? { baselineRun: baseline } : {})
  }
  if (baseline !== undefined) {
    result.startMs = figure(big.startMs, baseline.startMs)
    result.formationMs = figure(big.formationMs, baseline.formationMs)
    result.submitMs = figure(big.submitMs, baseline.submitMs)
    result.jobsMs = figure(big.jobsMs, baseline.jobsMs)
    result.convergenceMs = figure(big.convergenceMs, baseline.convergenceMs)
    result.jobLatencyP50Ms = figure(big.latencyP50Ms, baseline.latencyP50Ms)
    result.jobLatencyP95Ms = figure(big.latencyP95Ms, baseline.latencyP95Ms)
    if (big.oneAtATime !== undefined && baseline.oneAtATime !== undefined) {
      result.oneAtATimeLatencyP50Ms = { ...figure(big.oneAtATime.latencyP50Ms, baseline.oneAtATime.latencyP50Ms), note: 'jobs submitted one at a time after the burst, each once the previous was verified: the latency on a mesh that is not saturated' }
      result.oneAtATimeSeenP50Ms = { ...figure(big.oneAtATime.seenP50Ms, baseline.oneAtATime.seenP50Ms), note: 'the same, from the POST until the submitting node said verified, as its user sees it' }
      result.oneAtATimeCpuSecondsPerJobAboveIdle = figure(big.oneAtATime.cpuSecondsPerJobAboveIdle, baseline.oneAtATime.cpuSecondsPerJobAboveIdle)
    }
    result.rssMbPerNode = figure(big.rssMbPerNode, baseline.rssMbPerNode)
    result.idleCoresPerNode = figure(big.idleCoresPerNode, baseline.idleCoresPerNode)
    result.cpuSecondsPerJob = figure(round(big.cpuSeconds / jobs, 2), round(baseline.cpuSeconds / jobs, 2))
    // What the jobs added to what the same mesh burns idle over the same span: the per-job cost proper.
    const aboveIdle = (r: ClusterRun): number => round((r.cpuSeconds - r.idleCoresPerNode * r.nodes * r.cpuSpanS) / jobs, 2)
    result.cpuSecondsPerJobAboveIdle = { ...figure(aboveIdle(big), aboveIdle(baseline)), note: '(CPU of the span − idle cores per node × nodes × the span) ÷ jobs' }
    result.duplicateResults = { value: big.duplicateResults, baseline: baseline.duplicateResults, note: 'results beyond the replicas asked for: duplicate builds' }
  }
  if (big.error !== undefined) result.error = big.error
  return result
}

/** A client of one node, with its API token (every change needs it). */
function clientOf (node: HostProcess['nodes'][number], timeoutMs: number): NodeClient {
  return new NodeClient(node.api, { timeoutMs, token: readFileSync(join(node.home, 'api-token'), 'utf8').trim() })
}

export async function startHost (spec: { dir: string, first: number, count: number, bootstrap: string[], sandbox: string, mesh: string, presenceIntervalMs?: number }, timeoutMs: number, cpuGroup?: CpuGroup): Promise<HostProcess> {
  // BENCH_HOST_ARGS: options for the hosts' Node.js, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile them.
  const nodeArgs = process.env.BENCH_HOST_ARGS?.split(' ').filter((a) => a !== '') ?? []
  const [file, ...argv] = inGroup(cpuGroup?.procsFile, [process.execPath, ...nodeArgs, HOST, JSON.stringify(spec)])
  const child = spawn(file!, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const host: HostProcess = { child, nodes: [], stderr: '', ...(cpuGroup !== undefined ? { cpuGroup } : {}) }
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { host.stderr = (host.stderr + chunk).slice(-20_000) })
  await new Promise<void>((resolve, reject) => {
    let pending = ''
    const timer = setTimeout(() => {
      // Nobody will stop a host that was never returned: stop it here.
      child.kill('SIGTERM')
      setTimeout(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }, 20_000).unref()
      reject(new Error(`host of nodes ${spec.first}.. did not start its ${spec.count} nodes within ${timeoutMs} ms: ${host.stderr.trim().slice(-500)}`))
    }, timeoutMs)
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk
      let newline: number
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        const event = JSON.parse(line) as { event: string } & HostProcess['nodes'][number]
        if (event.event === 'node') host.nodes.push(event)
        if (event.event === 'ready') { clearTimeout(timer); resolve() }
        if (event.event === 'counters') host.onCounters?.((event as unknown as { counters: Record<string, number> }).counters)
        if (event.event === 'stopped') host.eventLoopDelayMs = (event as unknown as { eventLoopDelayMs: HostProcess['eventLoopDelayMs'] }).eventLoopDelayMs
      }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`host of nodes ${spec.first}.. exited with ${String(code)}: ${host.stderr.trim().slice(-500)}`)) })
  })
  return host
}

export async function stopHost (host: HostProcess): Promise<void> {
  await stopChild(host.child, 60_000, 'close')
}

async function jobSource (scratch: string): Promise<{ bytes: Uint8Array, spec: Record<string, unknown> }> {
  const dir = join(scratch, 'job')
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'words.txt'), 'pear\napple\nfig\n')
  const spec = { name: 'cluster', platforms: ['linux-x64'], steps: [{ name: 'build', run: 'mkdir -p dist && sort words.txt > dist/out.txt' }], artifacts: ['dist/*'], timeout: 60 }
  await writeFile(join(dir, 'buildhaus.json'), JSON.stringify(spec))
  return { bytes: (await packDirectory(dir)).bytes, spec }
}

async function fetchLog (api: string): Promise<string[]> {
  const response = await fetch(new URL('/api/log', api), { signal: AbortSignal.timeout(30_000) })
  if (!response.ok) throw new Error(`GET /api/log at ${api} answered ${response.status}`)
  return (await response.text()).split('\n').filter((l) => l !== '')
}

/**
 * From the common log: each job's latency from its entry's time to the
 * result that completed its replicas (authors' wall clocks, one machine), and
 * how many results came beyond the replicas asked for.
 */
function jobTimings (lines: string[], ids: Set<string>): { latencies: number[], duplicates: number, phases: LatencyPhases } {
  const submitted = new Map<string, number>()
  const results = new Map<string, number[]>()
  const claimDelays: number[] = []
  const builds: number[] = []
  const published: number[] = []
  const claims: Array<{ job: string, time: number }> = []
  const runs: Array<{ job: string, time: number, start: number, end: number }> = []
  for (const line of lines) {
    const entry = JSON.parse(line) as { type: string, time: number, body: { job?: string, status?: string, start?: number, end?: number } }
    if (entry.type === 'job') {
      const id = entryIdOf(unsignedOf(line))
      if (ids.has(id)) submitted.set(id, entry.time)
    } else if (entry.type === 'result' && entry.body.job !== undefined && ids.has(entry.body.job) && entry.body.status !== 'refused') {
      results.set(entry.body.job, [...(results.get(entry.body.job) ?? []), entry.time])
      if (entry.body.start !== undefined && entry.body.end !== undefined) runs.push({ job: entry.body.job, time: entry.time, start: entry.body.start, end: entry.body.end })
    } else if (entry.type === 'claim' && entry.body.job !== undefined && ids.has(entry.body.job)) {
      claims.push({ job: entry.body.job, time: entry.time })
    }
  }
  for (const c of claims) { const t = submitted.get(c.job); if (t !== undefined) claimDelays.push(c.time - t) }
  for (const r of runs) { builds.push(r.end - r.start); published.push(r.time - r.end) }
  const p50 = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 0.5)
  const phases = { claimAfterJobP50Ms: p50(claimDelays), buildP50Ms: p50(builds), resultAfterBuildP50Ms: p50(published) }
  const latencies: number[] = []
  let duplicates = 0
  for (const [id, time] of submitted) {
    const times = (results.get(id) ?? []).sort((a, b) => a - b)
    if (times.length >= REPLICAS) latencies.push(times[REPLICAS - 1]! - time)
    duplicates += Math.max(0, times.length - REPLICAS)
  }
  return { latencies: latencies.sort((a, b) => a - b), duplicates, phases }
}

/** Where a job's latency goes (p50 over claims and results, authors' clocks on one machine): the job entry to each claim, a build's own run (the result's start to end), its end to the result entry. */
interface LatencyPhases { claimAfterJobP50Ms: number, buildP50Ms: number, resultAfterBuildP50Ms: number }

/** For BENCH_TIMELINES: each job's claims and results, ms after the job entry, with their authors. */
function printTimelines (lines: string[], ids: string[]): void {
  const entries = lines.map((line) => ({ id: entryIdOf(unsignedOf(line)), ...(JSON.parse(line) as { author: string, type: string, time: number, body: { job?: string, status?: string } }) }))
  for (const id of ids) {
    const job = entries.find((e) => e.id === id)
    if (job === undefined) continue
    const related = entries.filter((e) => e.body.job === id).sort((a, b) => a.time - b.time)
    process.stderr.write(`job ${id.slice(0, 8)} by ${job.author.slice(0, 6)}: ${related.map((e) => `${e.type}${e.body.status !== undefined ? `(${e.body.status})` : ''}@${e.time - job.time}ms:${e.author.slice(0, 6)}`).join(' ')}\n`)
  }
}

async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN) / 1024
}

/** User + system CPU seconds of the host processes: their cgroup's, or /proc's (with the sandboxes they waited for). */
async function cpuSecondsOf (hosts: HostProcess[]): Promise<number> {
  const group = hosts[0]?.cpuGroup
  if (group !== undefined && hosts.every((h) => h.cpuGroup === group)) return await group.usageSeconds()
  let ticks = 0
  for (const host of hosts) {
    const stat = await readFile(`/proc/${host.child.pid!}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): utime, stime, cutime, cstime are 14–17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
  }
  return ticks / 100
}

const benchStarted = performance.now()

function progress (what: string): void {
  if (process.env.BENCH_QUIET === undefined) process.stderr.write(`bench/cluster [${((performance.now() - benchStarted) / 1000).toFixed(0)} s]: ${what}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [nodes, hosts, jobs] = process.argv.slice(2).map(Number)
  console.log(JSON.stringify(await benchCluster({
    ...(nodes !== undefined && !Number.isNaN(nodes) ? { nodes } : {}),
    ...(hosts !== undefined && !Number.isNaN(hosts) ? { hosts } : {}),
    ...(jobs !== undefined && !Number.isNaN(jobs) ? { jobs } : {}),
    ...(process.env.BENCH_PRESENCE_MS !== undefined ? { presenceIntervalMs: Number(process.env.BENCH_PRESENCE_MS) } : {})
  }), null, 2))
  process.exit(0)
}
