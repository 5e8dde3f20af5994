import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HealthResponse, PeersResponse, PeerView } from '../../src/node/api/types.js'
import { tempDir } from './temp-home.js'

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
    const child = spawn(NODE, [BIN, 'join', '--json', '--home', this.home, ...TEST_NODE_ARGS, ...args], {
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
    const timeoutMs = this.options.readyTimeoutMs ?? 30_000
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`buildhaus-node join in ${this.home} was not ready within ${timeoutMs} ms: ${this.stderr.trim()}`)) }, timeoutMs)
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
      const port = /\/tcp\/(\d+)/.exec(previous.listen[0] ?? '')?.[1]
      if (port !== undefined) args.push('--listen', `/ip4/127.0.0.1/tcp/${port}`)
    }
    return await this.start(fixListen(args))
  }

  /** Send a signal and wait for the process to end. */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<ExitInfo> {
    if (this.child === undefined || this.exit === undefined) throw new Error(`the node in ${this.home} was never started`)
    if (this.running) this.child.kill(signal)
    return await this.exit
  }

  /** SIGTERM, then SIGKILL if it has not stopped within `timeoutMs`. */
  async stop (timeoutMs = 15_000): Promise<ExitInfo> {
    if (this.child === undefined || this.exit === undefined) throw new Error(`the node in ${this.home} was never started`)
    if (!this.running) return await this.exit
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => { this.child?.kill('SIGKILL') }, timeoutMs)
    try {
      return await this.exit
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

async function exited (child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise((resolve) => {
    // 'close', not 'exit': by then everything the process printed has been read.
    child.once('close', (code, signal) => { resolve({ code, signal }) })
  })
}
