import { fork, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { componentLogger } from '../util/logger.js'
import type { KillRequest, SpawnRequest } from './spawn-helper-main.js'
import { readProcessNow } from './proc.js'
import type { StepChild, StepSpawnOptions } from './step-process.js'

const log = componentLogger('sandbox:spawn-helper')

/**
 * How much lower than the node's own (added to its nice value, as nice(1)
 * does, at most 19) is the priority of everything the helpers start: builds,
 * and the tools a node runs for them (git, gpgv, mmdebstrap, diffoscope). A build with as
 * many threads as it likes then still leaves the node the CPU it needs to
 * gossip, claim, renew leases and answer its API: at nice 10 a thread weighs
 * about a tenth of the node's, so a `make -j16` gets ~63 % of a core the node
 * wants instead of ~94 %. A machine with nothing else to do gives the build
 * all of its CPU all the same (docs/SANDBOX.md, "CPU priority").
 */
export const BUILD_NICE = 10

/**
 * Sandbox processes started by a small long-lived helper process
 * (spawn-helper-main.ts) instead of the node itself.
 *
 * Why: Node's spawn forks the calling process. A node of ~120 MB stops its
 * event loop for the fork (5–15 ms here, copying its page tables), and every
 * page of its heap written afterwards takes a copy-on-write fault: a spawn
 * cost a busy node ~15–35 ms of CPU, on a job whose whole node CPU is ~100
 * ms (BENCHMARKS.md, "Burst CPU per job, sixth session"). The helper's heap
 * is a few MB. The step's pipes are sockets the helper passes over its IPC
 * channel (Node's child_process pipes are socket pairs), so the node reads
 * and writes them directly; the helper reports each process's exit.
 *
 * It is also the only way a sandbox starts: the helper closes every
 * descriptor it inherited from the node (LevelDB's files have no
 * close-on-exec), which the node itself cannot do before a spawn.
 *
 * A helper that cannot be started, or dies, is not fatal: the processes it
 * had are reported killed (and are killed), and later spawns start a new one.
 */
export class SpawnHelper {
  private process: ChildProcess | undefined
  /** The processes asked for and not yet reported ended, with the helper that has them. */
  private readonly children = new Map<number, { child: HelpedChild, helper: ChildProcess }>()
  private nextId = 1

  /** `role`: a word on the helper's command line, naming it in `ps` (the node's shared one is `host`). */
  constructor (private readonly role?: string) {}

  /** Start `file` as StepProcess would with Node's spawn (detached, stdio per `options.stdio`). */
  spawn (file: string, args: string[], options: StepSpawnOptions): HelpedChild {
    const pipes = options.stdio.flatMap((kind, fd) => kind === 'pipe' ? [fd] : [])
    const id = this.nextId++
    const child = new HelpedChild(pipes, (signal, group) => { this.post({ op: 'kill', id, signal, ...(group ? { group } : {}) }) })
    const helper = this.running()
    if (helper === undefined) {
      child.failed(Object.assign(new Error('the spawn helper is not running'), { code: 'ESRCH' }))
      return child
    }
    this.children.set(id, { child, helper })
    helper.channel?.ref()
    const request: SpawnRequest = { op: 'spawn', id, file, args, cwd: options.cwd, env: options.env, pipes, ...(options.uid === undefined ? {} : { uid: options.uid }), ...(options.gid === undefined ? {} : { gid: options.gid }) }
    if (options.feed !== undefined) request.feed = { fd: options.feed.fd, data: options.feed.bytes.toString('base64') }
    this.post(request)
    return child
  }

  /** A message to the helper; one it cannot take (it is exiting) is dropped: its exit reports every process it had. */
  private post (message: SpawnRequest | KillRequest): void {
    try {
      this.process?.send(message)
    } catch (err) {
      log('could not reach the spawn helper: %e', err)
    }
  }

  /** Stop the helper (the node is stopping; the executor killed its processes already); a later spawn starts another. */
  close (): void {
    const helper = this.process
    this.process = undefined
    if (helper?.connected === true) helper.disconnect()
  }

  private running (): ChildProcess | undefined {
    if (this.process !== undefined) return this.process
    const helper = fork(fileURLToPath(helperUrl()), [`--nice=${BUILD_NICE}`, ...(this.role === undefined ? [] : [this.role])], {
      // Nothing of the node's own options (a profiler, a heap size): a small plain process.
      execArgv: [],
      // The channel is fd 3: spawn-helper-main.ts keeps it when it closes what it inherited.
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json'
    })
    helper.on('message', (message: HelperMessage, handle?: Socket) => { this.onMessage(message, handle) })
    let gone = false
    const lost = (why: string): void => {
      if (gone) return
      gone = true
      if (this.process === helper) this.process = undefined
      const orphans = [...this.children].filter(([, entry]) => entry.helper === helper)
      if (orphans.length === 0) return
      log.error('the spawn helper %s; its %d processes are killed, and the next spawn starts another', why, orphans.length)
      for (const [id, { child }] of orphans) {
        this.children.delete(id)
        child.orphaned()
      }
    }
    helper.once('exit', (code, signal) => { lost(`exited (${signal ?? `code ${String(code)}`})`) })
    helper.on('error', (err) => {
      log.error('the spawn helper failed: %e', err)
      // Never started (no pid: the fork itself failed, e.g. EAGAIN): no 'exit' will come to report its requests.
      if (helper.pid === undefined) lost(`could not be started (${err.message})`)
    })
    // It must not keep a stopping node alive: its channel holds the loop only while processes are pending.
    helper.unref()
    helper.channel?.unref()
    this.process = helper
    return helper
  }

  private onMessage (message: HelperMessage, handle: Socket | undefined): void {
    const child = this.children.get(message.id)?.child
    if (child === undefined) {
      handle?.destroy()
      return
    }
    if ('pid' in message) child.spawned(message.pid, message.startTime)
    else if ('fd' in message && handle !== undefined) child.attach(message.fd, handle)
    else if ('error' in message) this.settle(message.id, () => { child.failed(Object.assign(new Error(message.error.message), { code: message.error.code })) })
    else if ('exit' in message) this.settle(message.id, () => { child.exited(message.exit.code, message.exit.signal) })
  }

  private settle (id: number, report: () => void): void {
    const helper = this.children.get(id)?.helper
    this.children.delete(id)
    if (![...this.children.values()].some((entry) => entry.helper === helper)) helper?.channel?.unref()
    report()
  }
}

type HelperMessage =
  | { id: number, pid: number, startTime?: number }
  | { id: number, fd: number }
  | { id: number, error: { message: string, code?: string } }
  | { id: number, exit: { code: number | null, signal: NodeJS.Signals | null } }

/**
 * A process the helper started, shaped as StepProcess uses Node's
 * ChildProcess. Its streams exist at once and are joined to the helper's
 * sockets when they arrive; its pid is known once `whenSpawned` settles.
 */
export class HelpedChild extends EventEmitter implements StepChild {
  pid: number | undefined
  /** The process's start time (clock ticks after boot), as the helper read it before it could reap it. */
  startTime: number | undefined
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  readonly stdio: Array<PassThrough | null>
  readonly whenSpawned: Promise<{ pid: number, startTime?: number } | undefined>
  private resolveSpawned!: (value: { pid: number, startTime?: number } | undefined) => void
  private ended = false
  /** The fds whose sockets arrived. */
  private readonly attached = new Set<number>()

  constructor (pipes: number[], private readonly signal: (signal: NodeJS.Signals, group: boolean) => void) {
    super()
    this.stdio = [0, 1, 2, 3, 4].map((fd) => pipes.includes(fd) ? new PassThrough() : null)
    this.whenSpawned = new Promise((resolve) => { this.resolveSpawned = resolve })
  }

  get stdin (): PassThrough | null { return this.stdio[0] ?? null }
  get stdout (): PassThrough | null { return this.stdio[1] ?? null }

  kill (signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.ended) return false
    this.signal(signal, false)
    return true
  }

  /** Signal the process's whole group (it leads one), as long as the helper has not reaped it. */
  killGroup (signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.ended) return false
    this.signal(signal, true)
    return true
  }

  spawned (pid: number, startTime: number | undefined): void {
    this.pid = pid
    this.startTime = startTime
    this.resolveSpawned({ pid, ...(startTime === undefined ? {} : { startTime }) })
  }

  /** Join the helper's socket of `fd` to its stream: stdin is written into it, the others read from it. */
  attach (fd: number, socket: Socket): void {
    const stream = this.stdio[fd]
    // (A stream its user destroyed before the socket came: nothing will read or end the socket.)
    if (stream === null || stream === undefined || stream.destroyed || this.attached.has(fd)) {
      socket.destroy()
      return
    }
    this.attached.add(fd)
    if (fd === 0) {
      socket.on('error', (err) => { stream.destroy(err) })
      stream.pipe(socket)
      // Destroyed by its user (not ended): the socket goes too, so that the process sees its stdin close.
      stream.once('close', () => { if (!stream.writableFinished) socket.destroy() })
      return
    }
    // A socket's error ends the stream as the pipe's end would (the step's output is whatever came).
    socket.on('error', () => { stream.end() })
    socket.pipe(stream)
    // The stream destroyed by its user: nothing reads the socket any more, so it must not hold its descriptor.
    stream.once('close', () => { socket.destroy() })
  }

  exited (code: number | null, signal: NodeJS.Signals | null): void {
    if (this.ended) return
    this.ended = true
    this.exitCode = code
    this.signalCode = signal
    this.emit('exit', code, signal)
  }

  failed (err: Error): void {
    if (this.ended) return
    this.ended = true
    this.resolveSpawned(undefined)
    this.endUnattached()
    queueMicrotask(() => { this.emit('error', err) })
  }

  /** The helper died: the process is killed (the helper can no longer do it) and reported so. */
  orphaned (): void {
    if (this.ended) return
    if (this.pid === undefined) return this.failed(Object.assign(new Error('the spawn helper exited'), { code: 'ESRCH' }))
    // By pid and start time: once the helper is gone, init reaps the process and its pid may be reused.
    if (this.startTime !== undefined && readProcessNow(this.pid)?.startTime === this.startTime) {
      try { process.kill(this.pid, 'SIGKILL') } catch { /* gone already */ }
    }
    this.endUnattached()
    this.exited(null, 'SIGKILL')
  }

  /** Streams whose sockets never came end now (those that came end with their sockets). */
  private endUnattached (): void {
    this.stdio.forEach((stream, fd) => { if (stream !== null && !this.attached.has(fd)) stream.end() })
  }
}

let helperPath: URL | undefined

/** Compiled, the helper sits beside this module as .js (bundled too: scripts/bundle.js); under the test runner only the .ts exists. */
function helperUrl (): URL {
  if (helperPath !== undefined) return helperPath
  const compiled = new URL('./spawn-helper-main.js', import.meta.url)
  helperPath = existsSync(fileURLToPath(compiled)) ? compiled : new URL('./spawn-helper-main.ts', import.meta.url)
  return helperPath
}
