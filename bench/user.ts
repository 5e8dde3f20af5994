import { spawn } from 'node:child_process'
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { packDirectory } from '../src/archive/index.js'
import { delay, waitFor } from '../src/util/wait.js'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { startPerfRecord } from './child-process.js'
import { makeCpuGroup, type CpuGroup } from './cpu-group.js'
import { machineBusySeconds, TICKS_PER_SECOND } from './machine-cpu.js'
import { startHost, stopHost, type HostProcess } from './cluster.js'
import { procMemory, procStatus, ROOT, startNodeProcess, stopNodeProcess, type NodeProcess } from './node-process.js'
import { percentile, round } from './stats.js'

/**
 * What a user sees, beside Buildbot measured the same way in the same run.
 *
 * buildhaus: `buildhaus-node join` processes on loopback (3 by default, as
 * Buildbot's anchor has 3 workers), a trivial job (one step `true`, no
 * artifacts) submitted with `POST /api/jobs` to one node, its verdict read
 * from that node's `GET /api/events` (server-sent events, no polling):
 * - latency: warm-up jobs, then jobs one at a time, submit → verified
 *   (just before the POST is sent → the SSE event saying `verified`),
 *   nearest-rank p50/p95;
 * - burst: N jobs POSTed by 4 client threads (worker threads, each with its
 *   own keep-alive connection, taking the next job as a thread pool does),
 *   time from the first POST to the last `verified` event;
 * each with 1 and 2 replicas; peak RSS (VmHWM) of every node process; CPU
 * seconds of the node processes (with the sandboxes they ran) per phase.
 *
 * Buildbot 3.7 (Debian's packages: 1 master, 3 workers): `bash
 * ../shared/anchors/buildbot/bench.sh`, forced over REST and read from SSE
 * the same way; its last stdout line is its JSON.
 *
 * Ratios: Buildbot's latency ÷ ours, our throughput ÷ Buildbot's, Buildbot's
 * CPU per build ÷ ours.
 */
export interface BenchUserOptions {
  /** Node processes (default 3). */
  nodes?: number
  /** `--slots` of every node (default: the node's own default). */
  slots?: number
  /** Untimed jobs before the timed ones (default 3, as Buildbot's anchor). */
  warmup?: number
  /** Jobs timed one after another (default 20, as Buildbot's anchor). */
  sequential?: number
  /**
   * Also time jobs one at a time with this pause before each (default 500 ms;
   * 0 skips it), 1 replica: a job that finds the mesh idle, as most do, with
   * the spare runs made after the last one ready. The back-to-back figure is
   * the one compared with Buildbot (its anchor runs its jobs back to back).
   */
  idleGapMs?: number
  /** Jobs per burst (default 100). */
  burst?: number
  /** Client threads of the burst (default 4). */
  clients?: number
  /** Replica counts measured (default [1, 2]). */
  replicas?: number[]
  /** Run Buildbot's anchor too (default true; BENCH_BUILDBOT=0 turns it off). */
  buildbot?: boolean
  /** Path of the anchor script (default ../shared/anchors/buildbot/bench.sh beside the repository). */
  buildbotScript?: string
  /** Peers of the idle-RSS measure (default 50; 0 skips it), in host processes of 10 (bench/cluster-host.ts). */
  idlePeers?: number
  /** How long the node idles among them before its memory is read (default 30 s). */
  idleMs?: number
}

const CLIENT = join(ROOT, 'dist', 'bench', 'user-client.js')
const DEFAULT_ANCHOR = join(ROOT, '..', 'shared', 'anchors', 'buildbot', 'bench.sh')
/** How long one job may take before the bench counts it lost. */
const JOB_TIMEOUT_MS = 120_000
/**
 * BENCH_TRACE=DIR: the node processes note timestamps along each job's path
 * (src/util/trace.ts) and this bench notes each timed job's POST and SSE
 * event, all written into DIR; `node dist/bench/trace-summary.js DIR` reads them.
 */
const TRACE_DIR = process.env.BENCH_TRACE === undefined || process.env.BENCH_TRACE === '' ? undefined : process.env.BENCH_TRACE
if (TRACE_DIR !== undefined) process.env.BUILDHAUS_TRACE_DIR = TRACE_DIR

const SPEC = { name: 'trivial', steps: [{ name: 'true', run: 'true' }], timeout: 60 }

interface SubmitBody { spec: typeof SPEC, overrides: { replicas: number }, source: { hash: string, size: number } }

type Verdict = 'verified' | 'failed' | 'mismatch' | 'cancelled'

/** The verdict events of one node's `GET /api/events`, with the time each arrived. */
class VerdictStream {
  private readonly decided = new Map<string, { at: number, wall: number, verdict: Verdict }>()
  private readonly waiters = new Map<string, Array<() => void>>()
  private readonly controller = new AbortController()
  private failure: Error | undefined
  readonly ready: Promise<void>

  constructor (api: string) {
    this.ready = this.open(api)
  }

  private async open (api: string): Promise<void> {
    const response = await fetch(new URL('/api/events', api), { signal: this.controller.signal })
    if (!response.ok || response.body === null) throw new Error(`GET /api/events answered ${response.status}`)
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    let pending = ''
    let event = ''
    const read = async (): Promise<void> => {
      while (true) {
        const { value, done } = await reader.read()
        if (done) throw new Error('the event stream closed')
        const at = performance.now()
        const wall = Date.now()
        pending += decoder.decode(value, { stream: true })
        let newline: number
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline)
          pending = pending.slice(newline + 1)
          if (line.startsWith('event: ')) event = line.slice(7)
          else if (line.startsWith('data: ') && event === 'job') this.note(JSON.parse(line.slice(6)) as { id: string, verdict: string }, at, wall)
        }
      }
    }
    read().catch((err: unknown) => {
      if (this.controller.signal.aborted) return
      this.failure = err instanceof Error ? err : new Error(String(err))
      for (const list of this.waiters.values()) list.forEach((wake) => { wake() })
    })
  }

  private note (job: { id: string, verdict: string }, at: number, wall: number): void {
    if (job.verdict === 'pending' || job.verdict === 'unmatched' || this.decided.has(job.id)) return
    this.decided.set(job.id, { at, wall, verdict: job.verdict as Verdict })
    this.waiters.get(job.id)?.forEach((wake) => { wake() })
    this.waiters.delete(job.id)
  }

  /** When (performance.now()) the job's verdict arrived, and which. */
  async wait (id: string, timeoutMs = JOB_TIMEOUT_MS): Promise<{ at: number, wall: number, verdict: Verdict }> {
    const deadline = performance.now() + timeoutMs
    while (true) {
      if (this.failure !== undefined) throw this.failure
      const found = this.decided.get(id)
      if (found !== undefined) return found
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`job ${id} had no verdict on the event stream after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000))
        const list = this.waiters.get(id) ?? []
        list.push(() => { clearTimeout(timer); resolve() })
        this.waiters.set(id, list)
      })
    }
  }

  close (): void {
    this.controller.abort()
  }
}

/**
 * CPU seconds so far: the node processes (with the sandboxes they reaped),
 * the nodes' cgroup (everything they started, reaped or not) when there is
 * one, and the whole machine.
 */
async function cpuSnapshot (nodes: NodeProcess[], group?: CpuGroup): Promise<{ t: number, nodes: number, group: number | undefined, helpers: number, nodesSystem: number, sandboxes: number, machineBusy: number, self: number }> {
  let ticks = 0
  let children = 0
  let system = 0
  let helper = 0
  for (const node of nodes) {
    // A node's spawn helper (src/sandbox/spawn-helper.ts) works for it and reaps its sandboxes: its CPU is the node's.
    for (const pid of [node.child.pid!, ...await spawnHelpersOf(node.child.pid!)]) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
      if (stat === undefined) continue
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const own = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
      ticks += own
      if (pid !== node.child.pid) helper += own
      children += Number(fields[13]) + Number(fields[14])
      system += Number(fields[12])
    }
  }
  const machineBusy = await machineBusySeconds()
  const usage = process.cpuUsage()
  return { t: performance.now(), nodes: ticks / TICKS_PER_SECOND, group: await group?.usageSeconds(), helpers: helper / TICKS_PER_SECOND, nodesSystem: system / TICKS_PER_SECOND, sandboxes: children / TICKS_PER_SECOND, machineBusy, self: (usage.user + usage.system) / 1e6 }
}

/** The spawn helper processes a node started (children whose command line names spawn-helper-main). */
async function spawnHelpersOf (pid: number): Promise<number[]> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  const found: number[] = []
  for (const child of children.split(' ').filter((c) => c !== '').map(Number)) {
    const cmdline = await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes('spawn-helper-main')) found.push(child)
  }
  return found
}

function cpuDelta (a: Awaited<ReturnType<typeof cpuSnapshot>>, b: Awaited<ReturnType<typeof cpuSnapshot>>): Record<string, number | string> {
  const reaped = b.nodes - a.nodes
  // The nodes' cgroup counts what their sandboxes left to the machine's init (bench/cpu-group.ts); /proc alone does not.
  const nodes = a.group !== undefined && b.group !== undefined ? b.group - a.group : reaped
  const self = b.self - a.self
  return {
    wallS: round((b.t - a.t) / 1000, 2),
    nodesS: round(nodes, 2),
    countedBy: a.group !== undefined ? 'the nodes\' cgroup' : '/proc (sandboxes reaped by the machine\'s init are missed)',
    // What /proc credits to the node processes: themselves, their helpers and the processes those reaped.
    nodesReapedS: round(reaped, 2),
    // Of nodesReapedS: the sandboxes' processes (sh, bwrap, the step) that the nodes (or their spawn helpers) reaped.
    sandboxesS: round(b.sandboxes - a.sandboxes, 2),
    // Of nodesReapedS: the nodes' spawn helpers, with the sandboxes they reaped.
    helpersS: round(b.helpers - a.helpers, 2),
    // Of nodesReapedS: the node processes' own kernel time (forks, sockets, fsync), not their sandboxes'.
    nodesSystemS: round(b.nodesSystem - a.nodesSystem, 2),
    clientS: round(self, 2),
    // Everything else the machine did meanwhile: large means the figures are disturbed.
    otherS: round(Math.max(0, b.machineBusy - a.machineBusy - nodes - self), 2)
  }
}

export async function postJson<T> (api: string, token: string, path: string, body: unknown, expect = 201): Promise<T> {
  const response = await fetch(new URL(path, api), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body), signal: AbortSignal.timeout(JOB_TIMEOUT_MS) })
  const text = await response.text()
  if (response.status !== expect) throw new Error(`POST ${path} answered ${response.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text) as T
}

export async function getJson<T> (api: string, path: string): Promise<T> {
  const response = await fetch(new URL(path, api), { signal: AbortSignal.timeout(30_000) })
  if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`)
  return await response.json() as T
}

interface Spread { n: number, p50: number, p95: number, min: number, max: number, mean: number }

function spreadOf (samples: number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 0.5)),
    p95: round(percentile(sorted, 0.95)),
    min: round(sorted[0] ?? NaN),
    max: round(sorted.at(-1) ?? NaN),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length)
  }
}

interface JobDetail {
  time: number
  platforms: Array<{ claims: Array<{ builder: string, time: number }>, results: Array<{ builder: string, status: string, time: number, start: number, end: number, steps: Array<{ ms: number }> }> }>
}

/** Where one job's time went, from its entries' times (one machine, one clock) and the client's clock. */
function phasesOf (detail: JobDetail, postWall: number, sseWall: number): Record<string, number> | undefined {
  const platform = detail.platforms[0]
  const results = (platform?.results ?? []).filter((r) => r.status !== 'refused').sort((a, b) => a.time - b.time)
  const last = results.at(-1)
  const claim = last === undefined ? undefined : platform!.claims.filter((c) => c.builder === last.builder).sort((a, b) => a.time - b.time)[0]
  if (last === undefined || claim === undefined) return undefined
  return {
    postToJobEntry: detail.time - postWall,
    jobEntryToClaim: claim.time - detail.time,
    claimToSandboxStart: last.start - claim.time,
    sandboxRun: last.end - last.start,
    // Of sandboxRun: the step itself (bwrap started → the step exited and its processes were reaped) and the rest
    // (workspace, unpacking the source, cgroup, limits check, collecting).
    sandboxStep: last.steps.reduce((sum, step) => sum + step.ms, 0),
    sandboxAroundStep: last.end - last.start - last.steps.reduce((sum, step) => sum + step.ms, 0),
    sandboxEndToResult: last.time - last.end,
    resultToVerdictEvent: sseWall - last.time
  }
}

export async function benchUser (options: BenchUserOptions = {}): Promise<Record<string, unknown>> {
  const count = options.nodes ?? 3
  const warmup = options.warmup ?? 3
  const sequential = options.sequential ?? 20
  const idleGapMs = options.idleGapMs ?? 500
  const burst = options.burst ?? 100
  const clients = options.clients ?? 4
  const replicaCounts = options.replicas ?? [1, 2]
  const withBuildbot = options.buildbot ?? process.env.BENCH_BUILDBOT !== '0'
  const result: Record<string, unknown> = {
    what: `${count} \`buildhaus-node join\` processes on loopback; trivial job (one step \`true\`) POSTed to node 0's /api/jobs, verdict from its /api/events; latency: ${warmup} warm-up + ${sequential} one at a time; burst: ${burst} jobs from ${clients} client threads`,
    cpus: availableParallelism(),
    loadavgStart: loadavg().map((l) => round(l, 2))
  }
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-user-'))
  const nodes: NodeProcess[] = []
  let events: VerdictStream | undefined
  const group = await makeCpuGroup(`buildhaus-bench-user-${process.pid}`)
  const cpuGroup = 'unavailable' in group ? undefined : group
  result.cpuCountedBy = cpuGroup !== undefined ? 'a cgroup v1 cpuacct group of the nodes (their sandboxes included, whoever reaped them)' : `/proc only (${(group as { unavailable: string }).unavailable}): sandbox processes reaped by the machine's init are missed`
  try {
    // The nodes are the founders of their own mesh (keys made now, in their homes), as a user's own mesh would be.
    const mesh = join(scratch, 'mesh.json')
    await foundMeshFor(Array.from({ length: count }, (_, i) => join(scratch, `node-${i}`)), mesh, { name: 'bench-user' })
    progress(`starting ${count} node processes`)
    const startedAt = performance.now()
    for (let i = 0; i < count; i++) nodes.push(await startNodeProcess(scratch, i, nodes[0]?.listen[0], options.slots, mesh, cpuGroup === undefined ? {} : { cgroupProcs: cpuGroup.procsFile }))
    await waitFor(async () => {
      const health = await Promise.all(nodes.map(async (n) => await getJson<{ peers: number }>(n.api, '/api/health')))
      return health.every((h) => h.peers === count - 1)
    }, { timeoutMs: 120_000, intervalMs: 50, what: `${count} nodes to list each other` })
    result.startupMs = Math.round(performance.now() - startedAt)
    const health = await getJson<Record<string, unknown>>(nodes[0]!.api, '/api/health')
    result.slotsPerNode = options.slots ?? health.slots ?? 'default'

    const api = nodes[0]!.api
    const dir = join(scratch, 'job')
    await mkdir(dir)
    await writeFile(join(dir, 'buildhaus.json'), JSON.stringify(SPEC))
    const packed = await packDirectory(dir)
    const source = await postBlob(api, nodes[0]!.token, packed.bytes)
    events = new VerdictStream(api)
    await events.ready

    const latency: Record<string, unknown> = {}
    const bursts: Record<string, unknown> = {}
    for (const replicas of replicaCounts) {
      const body: SubmitBody = { spec: SPEC, overrides: { replicas }, source }
      progress(`latency, ${replicas} replica(s)`)
      latency[`replicas${replicas}`] = await sequentialLatency(nodes, cpuGroup, api, events, body, warmup, sequential)
      if (replicas === 1 && idleGapMs > 0) {
        progress(`latency, ${replicas} replica, each job after ${idleGapMs} ms of quiet`)
        latency[`replicas${replicas}AfterQuiet`] = { gapMs: idleGapMs, ...await sequentialLatency(nodes, cpuGroup, api, events, body, 0, sequential, idleGapMs) }
      }
      if (burst <= 0) continue
      progress(`burst of ${burst}, ${replicas} replica(s)`)
      bursts[`replicas${replicas}`] = await burstThroughput(nodes, cpuGroup, api, events, body, burst, clients)
    }
    result.latency = latency
    result.burst = bursts
    const rss = await Promise.all(nodes.map(async (n) => await procStatus(n.child.pid!)))
    result.peakRssMbPerNode = { max: Math.max(...rss.map((r) => r.hwmMb)), each: rss.map((r) => r.hwmMb) }
    result.rssMbPerNodeAtEnd = rss.map((r) => r.rssMb)
    // Each node's spawn helper is a process of its own beside it: its memory, not in the figures above.
    const helpers = (await Promise.all(nodes.map(async (n) => await spawnHelpersOf(n.child.pid!)))).flat()
    if (helpers.length > 0) result.spawnHelperMemoryMb = await Promise.all(helpers.map(async (pid) => await procMemory(pid)))
  } finally {
    events?.close()
    await Promise.allSettled(nodes.map(stopNodeProcess))
    await cpuGroup?.remove().catch((err: unknown) => { progress(`cannot remove the nodes' cgroup: ${String(err)}`) })
    await rm(scratch, { recursive: true, force: true })
  }

  // Buildbot right after our latency and burst, so that both meet the same load; the idle measure last.
  result.loadavgAfterBuildhaus = loadavg().map((l) => round(l, 2))
  if (withBuildbot) {
    progress('Buildbot 3.7 anchor (bash ../shared/anchors/buildbot/bench.sh)')
    try {
      result.buildbot = await runBuildbot(options.buildbotScript ?? DEFAULT_ANCHOR, { warmup, sequential, burst, clients })
    } catch (err) {
      result.buildbot = { error: err instanceof Error ? err.message : String(err) }
    }
  }

  const idlePeers = options.idlePeers ?? 50
  if (idlePeers > 0) {
    progress(`idle node among ${idlePeers} peers`)
    try {
      result.idleNode = await idleAmongPeers(idlePeers, options.idleMs ?? 30_000)
    } catch (err) {
      result.idleNode = { error: err instanceof Error ? err.message : String(err) }
    }
  }
  result.loadavgEnd = loadavg().map((l) => round(l, 2))
  result.ratios = ratiosOf(result)
  return result
}

export async function postBlob (api: string, token: string, bytes: Uint8Array): Promise<{ hash: string, size: number }> {
  const response = await fetch(new URL('/api/blobs', api), { method: 'POST', headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` }, body: new Blob([bytes as Uint8Array<ArrayBuffer>]), signal: AbortSignal.timeout(30_000) })
  if (response.status !== 201) throw new Error(`POST /api/blobs answered ${response.status}: ${(await response.text()).slice(0, 300)}`)
  return await response.json() as { hash: string, size: number }
}

async function sequentialLatency (nodes: NodeProcess[], group: CpuGroup | undefined, api: string, events: VerdictStream, body: SubmitBody, warmup: number, jobs: number, gapMs = 0): Promise<Record<string, unknown>> {
  const total: number[] = []
  const post: number[] = []
  const warm: number[] = []
  const phases: Record<string, number[]> = {}
  const traced: string[] = []
  const cpuBefore = await cpuSnapshot(nodes, group)
  for (let i = 0; i < warmup + jobs; i++) {
    // A user's pause, not a wait for the network: the mesh is left alone, as between two real submissions.
    if (gapMs > 0) await delay(gapMs)
    const wall = Date.now()
    const t0 = performance.now()
    const job = await postJson<{ id: string }>(api, nodes[0]!.token, '/api/jobs', body)
    const t1 = performance.now()
    const seen = await events.wait(job.id)
    if (seen.verdict !== 'verified') throw new Error(`job ${job.id} ended ${seen.verdict}`)
    if (i < warmup) { warm.push(round(seen.at - t0)); continue }
    if (TRACE_DIR !== undefined) {
      const label = `${gapMs > 0 ? 'quiet' : 'b2b'}-r${body.overrides.replicas}`
      traced.push(`${(performance.timeOrigin + t0).toFixed(3)} post-${label} ${job.id.slice(0, 16)}`, `${(performance.timeOrigin + seen.at).toFixed(3)} seen-${label} ${job.id.slice(0, 16)}`)
    }
    total.push(seen.at - t0)
    post.push(t1 - t0)
    const detail = await getJson<JobDetail>(api, `/api/jobs/${job.id}`)
    const parts = phasesOf(detail, wall, seen.wall)
    if (parts !== undefined) for (const [k, v] of Object.entries(parts)) (phases[k] ??= []).push(v)
  }
  const cpu = cpuDelta(cpuBefore, await cpuSnapshot(nodes, group))
  if (TRACE_DIR !== undefined) await appendFile(join(TRACE_DIR, 'trace-client.txt'), traced.map((line) => `${line}\n`).join(''))
  return {
    submitToVerifiedMs: spreadOf(total),
    postMs: spreadOf(post),
    warmupMs: warm,
    phasesMsP50: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(percentile([...v].sort((a, b) => a - b), 0.5))])),
    cpu,
    // Over a gap the nodes' idle CPU counts too: meaningful only back to back.
    ...(gapMs === 0 ? { cpuSecondsPerJob: round((cpu.nodesS as number) / (warmup + jobs), 3) } : {}),
    note: 'phases: p50 of each, from the deciding result\'s entries (ms clock of one machine); they need not add up to the p50 of the whole'
  }
}

async function burstThroughput (nodes: NodeProcess[], group: CpuGroup | undefined, api: string, events: VerdictStream, body: SubmitBody, jobs: number, clients: number): Promise<Record<string, unknown>> {
  const counter = new SharedArrayBuffer(4)
  const threads = Array.from({ length: clients }, () => new Worker(CLIENT, { workerData: { api, token: nodes[0]!.token, counter, total: jobs, body } }))
  const ids: string[] = []
  const postMs: number[] = []
  try {
    await Promise.all(threads.map(async (t) => await new Promise<void>((resolve, reject) => {
      t.once('message', () => { resolve() })
      t.once('error', reject)
    })))
    const recorder = startPerfRecord(nodes.map((n) => n.child.pid!), 997)
    const cpuBefore = await cpuSnapshot(nodes, group)
    const started = performance.now()
    await Promise.all(threads.map(async (t) => await new Promise<void>((resolve, reject) => {
      t.on('message', (message: { type: string, id?: string, postMs?: number, message?: string }) => {
        if (message.type === 'submitted') { ids.push(message.id!); postMs.push(message.postMs!) }
        if (message.type === 'done') resolve()
        if (message.type === 'error') reject(new Error(message.message))
      })
      t.once('error', reject)
      t.postMessage('go')
    })))
    const submitted = performance.now()
    const seen = await Promise.all(ids.map(async (id) => await events.wait(id, JOB_TIMEOUT_MS + jobs * 1_000)))
    const bad = seen.filter((s) => s.verdict !== 'verified')
    if (bad.length > 0) throw new Error(`${bad.length} burst jobs ended ${bad[0]!.verdict}`)
    const ended = Math.max(...seen.map((s) => s.at))
    const cpu = cpuDelta(cpuBefore, await cpuSnapshot(nodes, group))
    await recorder?.stop()
    const elapsed = ended - started
    // Builds beyond those asked for (two nodes claimed one slot at once).
    const details = await Promise.all(ids.map(async (id) => await getJson<JobDetail>(api, `/api/jobs/${id}`)))
    const replicas = body.overrides.replicas
    const runs = details.reduce((n, d) => n + (d.platforms[0]?.results.filter((r) => r.status !== 'refused').length ?? 0), 0)
    return {
      jobs,
      clients,
      submitMs: round(submitted - started),
      allVerifiedMs: round(elapsed),
      jobsPerSecond: round(jobs / (elapsed / 1000), 2),
      postMs: spreadOf(postMs),
      duplicateRuns: runs - jobs * replicas,
      cpu,
      cpuSecondsPerJob: round((cpu.nodesS as number) / jobs, 3)
    }
  } finally {
    await Promise.all(threads.map(async (t) => await t.terminate()))
  }
}

async function cpuSecondsOfPid (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
}

/**
 * Memory of one idle `buildhaus-node join` process once it has `peers` live
 * peers (full nodes in host processes of 10, chained as bench/cluster.ts
 * does, the first host joining through the measured node): its RSS alone,
 * then after it lists every peer and idles `idleMs`. The measured node is an
 * ordinary member (it is not every peer's bootstrap).
 */
async function idleAmongPeers (peers: number, idleMs: number): Promise<Record<string, unknown>> {
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-idle-'))
  const hosts: HostProcess[] = []
  let node: NodeProcess | undefined
  try {
    const mesh = join(scratch, 'mesh.json')
    await foundMeshFor(Array.from({ length: peers + 1 }, (_, i) => join(scratch, `node-${i}`)), mesh, { name: 'bench-idle' })
    node = await startNodeProcess(scratch, 0, undefined, undefined, mesh)
    await new Promise((resolve) => setTimeout(resolve, 5_000))
    const alone = await procMemory(node.child.pid!)
    const started = performance.now()
    const perHost = 10
    for (let h = 0; h * perHost < peers; h++) {
      const bootstrap = h === 0 ? [node.listen[0]!] : [hosts[h - 1]!.nodes[0]!.listen[0]!]
      hosts.push(await startHost({ dir: scratch, first: h * perHost + 1, count: Math.min(perHost, peers - h * perHost), bootstrap, sandbox: 'none', mesh }, 300_000))
    }
    await waitFor(async () => (await getJson<{ peers: number }>(node!.api, '/api/health')).peers === peers, { timeoutMs: 300_000, intervalMs: 1_000, what: `the measured node to list ${peers} peers` })
    const formedMs = Math.round(performance.now() - started)
    const cpuFrom = await cpuSecondsOfPid(node.child.pid!)
    const idleFrom = performance.now()
    await new Promise((resolve) => setTimeout(resolve, idleMs))
    const cores = ((await cpuSecondsOfPid(node.child.pid!)) - cpuFrom) / ((performance.now() - idleFrom) / 1000)
    const health = await getJson<{ peers: number, connections: number }>(node.api, '/api/health')
    const among = await procMemory(node.child.pid!)
    // A node is its process and its spawn helper: the helper's own memory (RssAnon) counts too; its file
    // pages are the same Node.js binary's, resident once for both.
    const helpers = await Promise.all((await spawnHelpersOf(node.child.pid!)).map(async (pid) => await procMemory(pid)))
    const withHelpers = round(among.vmRssMb! + helpers.reduce((sum, h) => sum + h.rssAnonMb!, 0), 1)
    return {
      peers: health.peers,
      connections: health.connections,
      formedMs,
      idleS: round(idleMs / 1000, 0),
      alone,
      amongPeers: among,
      spawnHelpers: helpers,
      withSpawnHelperMb: withHelpers,
      idleCores: round(cores, 4),
      goal: { vmRssMbAtMost: 100, met: withHelpers <= 100 },
      note: 'VmRSS counts the node binary\'s resident pages (RssFile, shared with every other node process) as well as the process\'s own memory (RssAnon); withSpawnHelperMb adds the spawn helper\'s own memory (its RssAnon) to the node\'s VmRSS'
    }
  } finally {
    if (node !== undefined) await stopNodeProcess(node)
    await Promise.allSettled(hosts.map(stopHost))
    await rm(scratch, { recursive: true, force: true })
  }
}

/** Buildbot's anchor: its progress to our stderr, its last stdout line as JSON. */
async function runBuildbot (script: string, sizes: { warmup: number, sequential: number, burst: number, clients: number }): Promise<Record<string, unknown>> {
  const child = spawn('bash', [script], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WARMUP: String(sizes.warmup), LAT_BUILDS: String(sizes.sequential), BURST: String(sizes.burst), BURST_CLIENTS: String(sizes.clients), WORKERS: '3' }
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-5_000)
    if (process.env.BENCH_QUIET === undefined) process.stderr.write(chunk.replace(/^(?=.)/gm, 'bench/user buildbot: '))
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const last = stdout.trim().split('\n').at(-1) ?? ''
  if (code !== 0 || !last.startsWith('{')) throw new Error(`the Buildbot anchor exited with ${String(code)}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)
  return JSON.parse(last) as Record<string, unknown>
}

interface BuildbotFigures {
  latency_ms?: { p50: number, p95: number }
  builds_per_s?: number
  burst_n?: number
  master_rss_mb?: number
  worker_rss_mb_max?: number
  cpu_seq?: { master_s: number, workers_s: number }
  cpu_burst?: { master_s: number, workers_s: number }
  warmup_ms?: number[]
}

function ratiosOf (result: Record<string, unknown>): Record<string, unknown> {
  const bb = result.buildbot as BuildbotFigures | undefined
  const lat = (result.latency as Record<string, { submitToVerifiedMs: Spread, cpu: { nodesS: number } }> | undefined)?.replicas1
  const burst = (result.burst as Record<string, { jobsPerSecond: number, cpuSecondsPerJob: number }> | undefined)?.replicas1
  if (bb?.latency_ms === undefined || lat === undefined || burst === undefined || bb.builds_per_s === undefined) return { note: 'no same-run Buildbot figures (see buildbot.error)' }
  const bbBurstCpu = bb.cpu_burst === undefined ? NaN : (bb.cpu_burst.master_s + bb.cpu_burst.workers_s) / (bb.burst_n ?? 100)
  const latencyP50 = round(bb.latency_ms.p50 / lat.submitToVerifiedMs.p50, 2)
  const throughput = round(burst.jobsPerSecond / bb.builds_per_s, 2)
  return {
    latencyP50: latencyP50,
    latencyP95: round(bb.latency_ms.p95 / lat.submitToVerifiedMs.p95, 2),
    burstThroughput: throughput,
    burstCpuPerJob: round(bbBurstCpu / burst.cpuSecondsPerJob, 2),
    peakRss: { buildhausNodeMb: (result.peakRssMbPerNode as { max: number }).max, buildbotMasterMb: bb.master_rss_mb, buildbotWorkerMb: bb.worker_rss_mb_max },
    meaning: 'latency: Buildbot p50 ÷ buildhaus p50 (1 replica); throughput: buildhaus jobs/s ÷ Buildbot builds/s (burst, 1 replica); cpu: Buildbot master+workers CPU-s per build ÷ buildhaus nodes CPU-s per job (burst); > 1 is buildhaus ahead',
    goal: { latencyP50AtLeast: 10, burstThroughputAtLeast: 10, peakRssMbPerNodeAtMost: 100, met: latencyP50 >= 10 && throughput >= 10 }
  }
}

function progress (what: string): void {
  if (process.env.BENCH_QUIET === undefined) process.stderr.write(`bench/user: ${what}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const number = (name: string): number | undefined => process.env[name] === undefined ? undefined : Number(process.env[name])
  const slots = number('BENCH_SLOTS')
  const sequential = number('BENCH_SEQUENTIAL')
  const idleGapMs = number('BENCH_IDLE_GAP_MS')
  const burst = number('BENCH_BURST')
  const replicas = process.env.BENCH_REPLICAS?.split(',').map(Number)
  const idlePeers = number('BENCH_IDLE_PEERS')
  console.log(JSON.stringify(await benchUser({
    ...(idlePeers !== undefined ? { idlePeers } : {}),
    ...(slots !== undefined ? { slots } : {}),
    ...(sequential !== undefined ? { sequential } : {}),
    ...(idleGapMs !== undefined ? { idleGapMs } : {}),
    ...(burst !== undefined ? { burst } : {}),
    ...(replicas !== undefined ? { replicas } : {})
  }), null, 2))
  process.exit(0)
}
