import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { packDirectory } from '../../src/archive/index.js'
import type { JobSpec, JobView, SpecOverrides } from '../../src/jobs/index.js'
import type { JobsResponse, JobSummary } from '../../src/node/api/routes/jobs.js'
import type { HealthResponse, PeersResponse, PeerView } from '../../src/node/api/types.js'
import { waitFor } from '../../src/util/wait.js'
import { tempDir } from './temp-home.js'
import { testMesh } from './test-mesh.js'

type Teardown = (fn: () => unknown) => void

/** The repository root; the compiled CLI runs from here. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Node 22 from the dev dependency (the system's Node 20 cannot run libp2p 3). */
export const NODE = join(ROOT, 'node_modules', '.bin', 'node')
export const BIN = join(ROOT, 'bin', 'buildhaus-node.js')

/** Arguments every test node gets: loopback only, no multicast, ports chosen by the system. */
export const TEST_NODE_ARGS = ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0']

/** The line `join --json` prints once the node is up. */
export interface ReadyEvent {
  event: 'ready'
  version: string
  pid: number
  peerId: string
  author: string
  home: string
  listen: string[]
  api: string
  platforms: string[]
  slots: number
  sandbox: string
  bootstrap: string[]
}

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
  /** The process exited, but its output stayed open: these processes (it started them) still held it. */
  outputHeldBy?: string[]
}

export interface CliResult extends ExitInfo {
  stdout: string
  stderr: string
}

/** Run one CLI command to completion (`peers`, `init`, a `join` expected to fail…). */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(NODE, [BIN, ...args], { cwd: ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, options.timeoutMs ?? 30_000)
  const exit = await exited(child)
  clearTimeout(timer)
  return { ...exit, stdout, stderr }
}

export interface NodeProcessOptions {
  home: string
  /** Extra `join` arguments (after TEST_NODE_ARGS, which they may override by repeating). */
  args?: string[]
  env?: NodeJS.ProcessEnv
  /** How long to wait for the ready line. */
  readyTimeoutMs?: number
  /** Run the node under this command, e.g. `['ip', 'netns', 'exec', 'bh07-n1']` (it must exec the node, keeping its pid). */
  wrapper?: string[]
  /** Replace TEST_NODE_ARGS (loopback listen and API), e.g. to listen on a namespace's address. */
  baseArgs?: string[]
  /**
   * The node makes its own key instead of taking a founder key of the test
   * mesh: it joins the mesh as a stranger (not a member until vouched for).
   */
  stranger?: boolean
}

/**
 * One `buildhaus-node join --json` process with its own home. Knows its ready
 * line (peer id, listen addresses, API URL), can be killed, stopped and
 * restarted with the same home, and reads its own API.
 */
export class NodeProcess {
  readonly home: string
  private readonly options: NodeProcessOptions
  private child?: ChildProcess
  private exit?: Promise<ExitInfo>
  private readyEvent?: ReadyEvent
  private apiToken?: string
  /** Everything the current process printed. */
  stdout = ''
  stderr = ''

  constructor (options: NodeProcessOptions) {
    this.home = options.home
    this.options = options
  }

  get ready (): ReadyEvent {
    if (this.readyEvent === undefined) throw new Error(`the node in ${this.home} has not started`)
    return this.readyEvent
  }

  get peerId (): string { return this.ready.peerId }
  get apiUrl (): string { return this.ready.api }
  /** The first listen multiaddr, with /p2p/: what others bootstrap from. */
  get address (): string { return this.ready.listen[0]! }
  get pid (): number | undefined { return this.child?.pid }
  get running (): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null }

  /** Spawn `join` and wait for its ready line. `args` replace the constructor's extra arguments. */
  async start (args = this.options.args ?? []): Promise<ReadyEvent> {
    if (this.running) throw new Error(`the node in ${this.home} is already running`)
    this.stdout = ''
    this.stderr = ''
    this.readyEvent = undefined
    const [command, ...prefix] = [...(this.options.wrapper ?? []), NODE]
    // Every test node joins the test mesh (the default trust mode: only members count), as a
    // founder unless it is a stranger; a test's own --mesh, later in the arguments, wins.
    const mesh = testMesh()
    if (this.options.stranger !== true) await mesh.keyFor(this.home)
    // One --listen only, the last: a restart's fixed port replaces the default's port 0.
    const joinArgs = fixListen([...(this.options.baseArgs ?? TEST_NODE_ARGS), '--mesh', mesh.file, ...args])
    const child = spawn(command!, [...prefix, BIN, 'join', '--json', '--home', this.home, ...joinArgs], {
      cwd: ROOT,
      env: this.options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    this.child = child
    this.exit = exited(child)
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    const ready = new Promise<ReadyEvent>((resolve, reject) => {
      let pending = ''
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        this.stdout += chunk
        pending += chunk
        let newline: number
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline)
          pending = pending.slice(newline + 1)
          try {
            const event = JSON.parse(line) as { event?: string }
            if (event.event === 'ready') resolve(event as ReadyEvent)
          } catch {}
        }
      })
      void this.exit!.then((info) => {
        reject(new Error(`buildhaus-node join exited (code ${String(info.code)}, signal ${String(info.signal)}) before it was ready: ${this.stderr.trim()}`))
      })
    })
    // A start is ~3 s on a quiet machine; several processes loading ~900 modules at once on a busy one took past 30 s.
    const timeoutMs = this.options.readyTimeoutMs ?? 60_000
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`buildhaus-node join in ${this.home} was not ready within ${timeoutMs} ms; stderr: ${this.stderr.trim()}; stdout: ${this.stdout.trim().slice(-2000)}`)) }, timeoutMs)
    })
    try {
      this.readyEvent = await Promise.race([ready, deadline])
    } catch (err) {
      child.kill('SIGKILL')
      await this.exit
      throw err
    } finally {
      clearTimeout(timer)
    }
    return this.readyEvent
  }

  /**
   * Start again with the same home. With `samePort` (the default) it listens on
   * the p2p port it had, as a real node on its fixed port would, so peers that
   * keep re-dialing the old address find it again.
   */
  async restart (options: { samePort?: boolean } = {}): Promise<ReadyEvent> {
    const previous = this.readyEvent
    if (this.running) await this.stop()
    const args = [...(this.options.args ?? [])]
    if (options.samePort !== false && previous !== undefined) {
      const match = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(previous.listen[0] ?? '')
      if (match !== null) args.push('--listen', `/ip4/${match[1]!}/tcp/${match[2]!}`)
    }
    return await this.start(args)
  }

  /** Send a signal and wait for the process to end. */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitInfo> {
    if (this.child === undefined || this.exit === undefined) throw new Error(`the node in ${this.home} was never started`)
    if (this.running) this.child.kill(signal)
    return this.checked(await this.exit)
  }

  /** An exit whose output stayed open is a leak of the node's: fail here, saying who held it. */
  private checked (info: ExitInfo): ExitInfo {
    if (info.outputHeldBy === undefined) return info
    throw new Error(`the node in ${this.home} exited (${info.signal ?? `code ${String(info.code)}`}), but its output was still open ${OUTPUT_CLOSE_MS} ms later: a process it started outlived it (held by: ${info.outputHeldBy.join(', ') || 'none found'})`)
  }

  /** SIGTERM, then SIGKILL if it has not stopped within `timeoutMs`. */
  async stop (timeoutMs = 15_000): Promise<ExitInfo> {
    if (this.child === undefined || this.exit === undefined) throw new Error(`the node in ${this.home} was never started`)
    if (!this.running) return this.checked(await this.exit)
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => { this.child?.kill('SIGKILL') }, timeoutMs)
    try {
      return this.checked(await this.exit)
    } finally {
      clearTimeout(timer)
    }
  }

  /** GET a path of this node's API as JSON. */
  async api<T> (path: string): Promise<T> {
    const response = await fetch(new URL(path, this.apiUrl), { signal: AbortSignal.timeout(5_000) })
    if (!response.ok) throw new Error(`GET ${path} on ${this.apiUrl} answered ${response.status}: ${await response.text()}`)
    return await response.json() as T
  }

  async health (): Promise<HealthResponse> {
    return await this.api<HealthResponse>('/api/health')
  }

  async peers (): Promise<PeerView[]> {
    return (await this.api<PeersResponse>('/api/peers')).peers
  }

  /** Peer ids of the live members this node lists, itself excluded. */
  async peerIds (): Promise<string[]> {
    return (await this.peers()).filter((p) => !p.self).map((p) => p.peerId).sort()
  }

  /**
   * The bearer token from the node's home: every change needs it, from
   * loopback too (src/node/api/auth.ts).
   */
  async token (): Promise<string> {
    this.apiToken ??= (await readFile(join(this.home, 'api-token'), 'utf8')).trim()
    return this.apiToken
  }

  /** POST JSON (or raw bytes) to a path of this node's API; the answer as JSON. */
  async post<T> (path: string, body: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    const raw = body instanceof Uint8Array
    const response = await fetch(new URL(path, this.apiUrl), {
      method: 'POST',
      headers: { 'content-type': raw ? 'application/octet-stream' : 'application/json', authorization: `Bearer ${await this.token()}` },
      body: raw ? body as unknown as BodyInit : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000)
    })
    if (!response.ok) throw new Error(`POST ${path} on ${this.apiUrl} answered ${response.status}: ${await response.text()}`)
    return await response.json() as T
  }

  /** Forks this node holds proof of: `{ author, seq, ids }` each. */
  async forks (): Promise<Array<{ author: string, seq: number, ids: string[] }>> {
    return (await this.api<{ forks: Array<{ author: string, seq: number, ids: string[] }> }>('/api/forks')).forks
  }

  /** Every job this node knows, as the grid sees them. */
  async jobs (): Promise<JobSummary[]> {
    return (await this.api<JobsResponse>('/api/jobs')).jobs
  }

  async job (id: string): Promise<JobView> {
    return await this.api<JobView>(`/api/jobs/${id}`)
  }

  /** The node's whole log (GET /api/log), one canonical entry line each, in the order it exports them. */
  async logLines (): Promise<string[]> {
    const response = await fetch(new URL('/api/log', this.apiUrl), { signal: AbortSignal.timeout(30_000) })
    if (!response.ok) throw new Error(`GET /api/log on ${this.apiUrl} answered ${response.status}`)
    return (await response.text()).split('\n').filter((line) => line !== '')
  }

  /** What `submit` does: pack `dir`, upload it as a blob, submit the job. Resolves to the new job's view. */
  async submit (dir: string, overrides: SpecOverrides = {}): Promise<JobView> {
    const spec = JSON.parse(await readFile(join(dir, 'buildhaus.json'), 'utf8')) as JobSpec
    const packed = await packDirectory(dir)
    const stored = await this.post<{ hash: string, size: number }>('/api/blobs', packed.bytes)
    if (stored.hash !== packed.sha256) throw new Error(`the node stored the source as ${stored.hash}, not ${packed.sha256}`)
    return await this.post<JobView>('/api/jobs', { spec, overrides, source: stored })
  }
}

/** With the port of the last run appended, keep only the last --listen (the test default is /tcp/0). */
function fixListen (args: string[]): string[] {
  const lastListen = args.lastIndexOf('--listen')
  if (lastListen < 0) return args
  const result: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--listen' && i !== lastListen) { i++; continue }
    result.push(args[i]!)
  }
  return result
}

/** Start a node process with a fresh temp home; stopped (then its home removed) at teardown. */
export async function startNodeProcess (teardown: Teardown, options: Partial<NodeProcessOptions> = {}): Promise<NodeProcess> {
  const home = options.home ?? await tempDir(teardown, 'buildhaus-node-')
  const node = new NodeProcess({ ...options, home })
  teardown(async () => { if (node.running) await node.stop() })
  await node.start()
  return node
}

export interface ClusterOptions {
  size: number
  /** Extra `join` arguments for every node. */
  args?: string[]
}

/**
 * N nodes on loopback: the first starts alone, the others bootstrap from it
 * (started one after another, so the machine's two cores are not swamped).
 * Teardown stops them in reverse order, then removes their homes.
 */
export async function startCluster (teardown: Teardown, options: ClusterOptions): Promise<NodeProcess[]> {
  const first = await startNodeProcess(teardown, { args: options.args ?? [] })
  const nodes = [first]
  for (let i = 1; i < options.size; i++) {
    nodes.push(await startNodeProcess(teardown, { args: [...(options.args ?? []), '--bootstrap', first.address] }))
  }
  return nodes
}

/** How long a node's output may stay open after it exited: longer means a process it started still holds it. */
const OUTPUT_CLOSE_MS = 10_000

async function exited (child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    // 'close', not 'exit': by then everything the process printed has been read.
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal })
    })
    // But a process the node started that outlives it (a leaked spawn helper or sandbox) keeps its pipes
    // open, and 'close' never comes: say so instead of hanging the test until its timeout.
    child.once('exit', (code, signal) => {
      timer = setTimeout(() => { resolve({ code, signal, outputHeldBy: holdersOf(child) }) }, OUTPUT_CLOSE_MS)
    })
  })
}

/** Processes other than `child` that still hold the read ends' peers of its stdout or stderr (as `pid (command)`). */
function holdersOf (child: ChildProcess): string[] {
  const sockets = new Set<string>()
  for (const stream of [child.stdout, child.stderr]) {
    const fd = (stream as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd
    if (fd === undefined || fd < 0) continue
    try {
      // A diagnostic: the pair's other end is the inode next to ours in practice (both neighbours are listed).
      const inode = Number(/socket:\[(\d+)\]/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1])
      if (Number.isInteger(inode)) for (const n of [inode - 1, inode + 1]) sockets.add(`socket:[${n}]`)
    } catch {}
  }
  const holders: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (!readdirSync(`/proc/${pid}/fd`).some((fd) => sockets.has(readlinkSync(`/proc/${pid}/fd/${fd}`)))) continue
      holders.push(`${pid} (${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 120)})`)
    } catch {}
  }
  return holders
}

/** Every node lists exactly the others (itself excluded) as live members. */
export async function meshFormed (nodes: NodeProcess[]): Promise<boolean> {
  const lists = await Promise.all(nodes.map(async (node) => await node.peerIds()))
  return nodes.every((node, i) => JSON.stringify(lists[i]) === JSON.stringify(nodes.filter((n) => n !== node).map((n) => n.peerId).sort()))
}

/** Wait until every node lists every other as a live member. */
export async function waitForMesh (nodes: NodeProcess[], options: { timeoutMs?: number } = {}): Promise<void> {
  await waitFor(async () => await meshFormed(nodes), { timeoutMs: options.timeoutMs ?? 30_000, intervalMs: 250, what: `${nodes.length} nodes to list each other as members` })
}

export interface NodeState {
  peerId: string
  jobs: JobSummary[]
  peers: PeerView[]
  log: string[]
  forks: Array<{ author: string, seq: number, ids: string[] }>
}

/** Jobs, members and the whole log of each node, read at about the same moment. */
export async function collectState (nodes: NodeProcess[]): Promise<NodeState[]> {
  return await Promise.all(nodes.map(async (node) => {
    const [jobs, peers, log, forks] = await Promise.all([node.jobs(), node.peers(), node.logLines(), node.forks()])
    return { peerId: node.peerId, jobs, peers, log, forks }
  }))
}

export interface LogComparison {
  /** Every node holds exactly the same set of entries. */
  identical: boolean
  /** Entries in each node's log, in node order. */
  counts: number[]
  /** Entries in the union of all logs. */
  union: number
  /** Per node (by peer id), how many of the union it lacks. */
  missing: Record<string, number>
}

/**
 * Compare the nodes' logs as sets of entry lines: the export order may differ
 * between nodes (any order valid for each chain is), the entries may not.
 */
export function compareLogs (logs: Array<{ peerId: string, log: string[] }>): LogComparison {
  const sets = logs.map((l) => new Set(l.log))
  const union = new Set(logs.flatMap((l) => l.log))
  const missing: Record<string, number> = {}
  logs.forEach((l, i) => { missing[l.peerId] = union.size - sets[i]!.size })
  return {
    identical: Object.values(missing).every((m) => m === 0) && logs.every((l, i) => l.log.length === sets[i]!.size),
    counts: logs.map((l) => l.log.length),
    union: union.size,
    missing
  }
}

/** Wait until every node holds the same entries (GET /api/log on each); resolves to the common log, sorted. */
export async function waitForSameLog (nodes: NodeProcess[], options: { timeoutMs?: number } = {}): Promise<string[]> {
  let last: LogComparison | undefined
  let common: string[] = []
  try {
    await waitFor(async () => {
      const logs = await Promise.all(nodes.map(async (node) => ({ peerId: node.peerId, log: await node.logLines() })))
      last = compareLogs(logs)
      common = [...logs[0]!.log].sort()
      return last.identical
    }, { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 500, what: `${nodes.length} nodes to hold the same log` })
  } catch (err) {
    throw new Error(`${(err as Error).message}; last comparison: ${JSON.stringify(last)}`, { cause: err })
  }
  return common
}

/**
 * Wait until every node shows each job with a final verdict (anything but
 * pending); resolves to the verdicts as the first node sees them.
 */
export async function waitForVerdicts (nodes: NodeProcess[], jobIds: string[], options: { timeoutMs?: number } = {}): Promise<Record<string, string>> {
  const wanted = new Set(jobIds)
  let verdicts: Record<string, string> = {}
  let undecided: string[] = []
  try {
    await waitFor(async () => {
      const views = await Promise.all(nodes.map(async (node) => await node.jobs()))
      undecided = []
      for (const [i, jobs] of views.entries()) {
        const byId = new Map(jobs.map((j) => [j.id, j.verdict]))
        for (const id of wanted) {
          const verdict = byId.get(id)
          if (verdict === undefined || verdict === 'pending') undecided.push(`${id.slice(0, 8)}@${i}:${verdict ?? 'unknown'}`)
        }
      }
      verdicts = Object.fromEntries(views[0]!.filter((j) => wanted.has(j.id)).map((j) => [j.id, j.verdict]))
      return undecided.length === 0
    }, { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 500, what: `${jobIds.length} jobs to reach a verdict on ${nodes.length} nodes` })
  } catch (err) {
    throw new Error(`${(err as Error).message}; undecided (job@node:verdict): ${undecided.slice(0, 20).join(' ')}`, { cause: err })
  }
  return verdicts
}

/**
 * Every sign of a fork the nodes show: proofs they hold (/api/forks), peers
 * they mark equivocating, and two different entries at one (author, seq) in
 * the union of their logs. Empty when no chain forked.
 */
export function forkEvidence (states: NodeState[]): string[] {
  const evidence: string[] = []
  for (const state of states) {
    for (const fork of state.forks) evidence.push(`${state.peerId} holds a fork proof for ${fork.author.slice(0, 12)} seq ${fork.seq}`)
    for (const peer of state.peers) if (peer.equivocating === true) evidence.push(`${state.peerId} marks ${peer.author.slice(0, 12)} equivocating`)
  }
  const bySlot = new Map<string, Set<string>>()
  for (const line of new Set(states.flatMap((s) => s.log))) {
    const { author, seq } = JSON.parse(line) as { author: string, seq: number }
    const key = `${author} ${seq}`
    bySlot.set(key, (bySlot.get(key) ?? new Set()).add(line))
  }
  for (const [key, lines] of bySlot) if (lines.size > 1) evidence.push(`${lines.size} different entries at ${key}`)
  return evidence
}
