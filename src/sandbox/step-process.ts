import { readlink } from 'node:fs/promises'
import type { Readable, Writable } from 'node:stream'
import { componentLogger } from '../util/logger.js'
import { spawnOnHost } from './host-process.js'
import { trace, traceNow, tracing } from '../util/trace.js'
import { delay } from '../util/wait.js'
import { descendants, isRunning, readProcess, readProcessNow, readProcessTable } from './proc.js'

/**
 * The shell that starts every step, as the node's user: it merges stderr
 * into stdout so the log keeps their order, joins the run's cgroups (each
 * file given before `--` gets its pid, before anything forks), runs
 * `setup` (e.g. `ulimit` builtins; numbers only, never job input), and execs
 * the rest.
 */
export function outerWrapper (setup = ''): string {
  return `exec 2>&1; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; ${setup === '' ? '' : `${setup}; `}exec "$@"`
}

/**
 * The shell that runs a step's command once the sandbox is set up: it writes
 * one byte on fd 3, which tells the node the sandbox started (so a bwrap
 * failure is never mistaken for a failing build), closes fds 3 and 4, and
 * execs its arguments (ending in `/bin/sh -c <run>`).
 */
export const INNER_WRAPPER = 'printf . >&3 && exec 3>&- 4>&- && exec "$@"'

/**
 * The inner shell of a warm step (see warm-step.ts), started before its
 * command is known: it writes one byte on fd 3 once the sandbox is set up,
 * then blocks reading stdin: a line with SOURCE_DATE_EPOCH (digits, or empty
 * for none); a line saying how the command follows, either `cat` (the rest
 * of the input, read by cat(1)) or a number of lines (read by the shell's
 * own `read`, a byte per system call: quicker than starting cat for a short
 * command); then the command's bytes followed by one `.` (so that no
 * trailing newline of the command is lost, and a cut-off hand-over is
 * refused). It exports the epoch, writes a second byte on fd 3 (the command
 * was taken), closes fds 3 and 4, points stdin at /dev/null and execs its
 * arguments (ending in `/bin/sh -c`) with the command appended.
 */
export const WARM_INNER_WRAPPER = 'exec 4>&- && printf . >&3 && IFS= read -r epoch && IFS= read -r lines && ' +
  'case $lines in ' +
  'cat) run=$(cat) ;; ' +
  '*[!0-9]*|\'\') exit 125 ;; ' +
  '*) run= && while [ "$lines" -gt 0 ]; do IFS= read -r line || exit 125; run="$run$line\n"; lines=$((lines - 1)); done && run=${run%?} ;; ' +
  'esac && ' +
  'case $run in *.) run=${run%.} ;; *) exit 125 ;; esac && ' +
  'case $epoch in \'\') ;; *[!0-9]*) exit 125 ;; *) export SOURCE_DATE_EPOCH="$epoch" ;; esac && ' +
  'printf . >&3 && exec 3>&- </dev/null && exec "$@" "$run"'

/** The input a warm step's inner shell takes (see WARM_INNER_WRAPPER): `epoch` digits or empty. */
export function warmStepInput (epoch: string, run: string): string {
  const payload = `${run}.`
  // Up to this size, the shell's read (a system call per byte) is quicker than starting cat.
  if (Buffer.byteLength(payload) > 2048) return `${epoch}\ncat\n${payload}`
  return `${epoch}\n${payload.split('\n').length}\n${payload}\n`
}

/** The fd on which bwrap (`--info-fd`) reports the host pid of the sandbox's init. */
export const INFO_FD = 4

/** The fd from which bwrap (`--seccomp`) reads the system call filter (seccomp.ts): a pipe fed the program, then closed. */
export const SECCOMP_FD = 5

const log = componentLogger('sandbox:process')

export interface StepProcessOptions {
  cwd: string
  env: Record<string, string>
  /** Start as this user (for a root node: the build user); a failure to switch is a spawn error, never a run as root. */
  user?: { uid: number, gid: number }
  /**
   * The members of the step's cgroup: when given, they are all there is to
   * kill (the step joins the group before it forks anything), and no scan of
   * /proc is needed.
   */
  cgroupPids?: () => Promise<number[]>
  /**
   * Read bwrap's `--info-fd` report on fd 4. bwrap exits as soon as the
   * step's command has, while its init (pid 1 of the sandbox) is still
   * killing what is left in the pid namespace: the kill waits for that init.
   */
  sandboxInfo?: boolean
  /** Give the process a pipe as stdin (`input`), on which a warm step's inner shell reads its command; else /dev/null. */
  commandInput?: boolean
  /** Give stderr a pipe of its own (`errors`), for a tool whose stdout is its report; else /dev/null (steps merge it into stdout). */
  stderr?: boolean
  /** What starts the process (default: the node's shared spawn helper, spawnHere; see spawn-helper.ts). */
  spawn?: StepSpawn
  /** The seccomp program bwrap reads on SECCOMP_FD (`--seccomp`): the same bytes for every step of a node. */
  seccomp?: Buffer
}

/** How a step's process is started: always detached (its own session), each fd of `stdio` a pipe or /dev/null. */
export interface StepSpawnOptions {
  cwd: string
  env: Record<string, string>
  stdio: Array<'pipe' | 'ignore'>
  uid?: number
  gid?: number
  /** A pipe on this fd, fed these bytes and closed at once (bwrap reads its seccomp program so); not one of `stdio`. */
  feed?: { fd: number, bytes: Buffer }
}

/** What StepProcess uses of a started process: Node's ChildProcess has it, and so has a spawn helper's. */
export interface StepChild {
  /** Undefined until known (see whenSpawned) or when the process never started. */
  readonly pid?: number | undefined
  readonly exitCode: number | null
  readonly signalCode: NodeJS.Signals | null
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  readonly stdio: ReadonlyArray<Readable | Writable | null | undefined>
  kill: (signal?: NodeJS.Signals) => boolean
  once: ((event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void) => unknown) &
  ((event: 'error', listener: (err: Error) => void) => unknown)
  /**
   * For a process started elsewhere (a helper), whose pid arrives later: its
   * pid and start time, read by its parent before it could reap it; undefined
   * if it never started. Without it, the pid is known at once.
   */
  readonly whenSpawned?: Promise<{ pid: number, startTime?: number } | undefined>
}

export type StepSpawn = (file: string, args: string[], options: StepSpawnOptions) => StepChild

/** The default: the node's shared spawn helper (host-process.ts), so that the step inherits none of the node's descriptors. */
export const spawnHere: StepSpawn = spawnOnHost

/**
 * Write `bytes` into a child's pipe and close it. They fit in the pipe's
 * buffer (a filter is a few hundred bytes), so nothing waits for the reader;
 * a process that is gone before it read them fails on its own (bwrap: no
 * filter, no sandbox), and the write's error is not the node's.
 */
export function feedPipe (stream: Writable | null | undefined, bytes: Buffer): void {
  if (stream === null || stream === undefined) return
  stream.on('error', () => {})
  stream.end(bytes)
}

export interface StepExit { code: number | null, signal: NodeJS.Signals | null }

/** One running step: its merged output, whether its sandbox started, its exit, and a kill for its whole tree. */
export class StepProcess {
  readonly child: StepChild
  readonly output: Readable
  /** Resolves true once the sandbox is set up (the step's command is about to start, or, warm, waits for it), false if it never was. */
  readonly started: Promise<boolean>
  /** With `commandInput`: resolves true once the inner shell has taken its command (the second byte on fd 3), false if it never does. */
  readonly commandTaken: Promise<boolean>
  /** With `commandInput`: the pipe to the process's stdin. */
  readonly input: Writable | undefined
  /** With `stderr`: the process's stderr. */
  readonly errors: Readable | undefined
  readonly exited: Promise<StepExit>
  /** Set when the process could not even be spawned. */
  spawnError: Error | undefined
  private readonly seen = new Map<number, number>()
  private readonly cgroupPids: (() => Promise<number[]>) | undefined
  /** The sandbox's init, once bwrap has said which it is. */
  private readonly sandboxInit: Promise<number | undefined>
  private readonly inSandbox: boolean
  /** When the step's own process started (clock ticks after boot), to tell it and its group from later ones reusing the number. */
  private leaderStart: number | undefined
  /** Settles once the process's pid (and start time) is known, or it is known it never started. */
  private readonly spawned: Promise<unknown>

  constructor (argv: string[], options: StepProcessOptions) {
    this.cgroupPids = options.cgroupPids
    const at = tracing ? traceNow() : 0
    this.child = (options.spawn ?? spawnHere)(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      // A step's stderr goes to stdout (the outer wrapper's first act), so the log keeps the order of the two.
      stdio: [options.commandInput === true ? 'pipe' : 'ignore', 'pipe', options.stderr === true ? 'pipe' : 'ignore', 'pipe', options.sandboxInfo === true ? 'pipe' : 'ignore'],
      ...(options.user === undefined ? {} : { uid: options.user.uid, gid: options.user.gid }),
      ...(options.seccomp === undefined ? {} : { feed: { fd: SECCOMP_FD, bytes: options.seccomp } })
    })
    if (tracing) trace(`spawn-${options.commandInput === true ? 'warm' : 'step'}`, (traceNow() - at).toFixed(2), at)
    this.inSandbox = options.sandboxInfo === true
    if (this.child.whenSpawned === undefined) {
      // Until node has reaped it, the pid names this process: its start time now is its own.
      this.leaderStart = this.child.pid === undefined ? undefined : readProcessNow(this.child.pid)?.startTime ?? 0
      this.spawned = Promise.resolve()
    } else {
      this.spawned = this.child.whenSpawned.then((known) => { this.leaderStart = known?.startTime })
    }
    this.output = this.child.stdout!
    if (tracing) this.output.once('close', () => { trace('sp-outclose', 'sb') })
    this.input = this.child.stdin ?? undefined
    this.errors = (this.child.stdio[2] as Readable | null | undefined) ?? undefined
    // A process that is gone before it read its command: the write fails, and the failure is seen on commandTaken.
    this.input?.on('error', (err) => { log('cannot hand a step its command: %e', err) })
    const marker = this.child.stdio[3] as Readable
    const marks = (count: number): Promise<boolean> => new Promise((resolve) => {
      let seen = 0
      marker.on('data', (chunk: Buffer) => {
        seen += chunk.length
        if (seen >= count) resolve(true)
      })
      marker.once('close', () => { resolve(false) })
      marker.once('error', () => { resolve(false) })
    })
    this.started = marks(1)
    this.commandTaken = options.commandInput === true ? marks(2) : this.started
    marker.resume()
    this.sandboxInit = options.sandboxInfo === true ? this.readSandboxInit(this.child.stdio[INFO_FD] as Readable) : Promise.resolve(undefined)
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => { if (tracing) trace('sp-exit', 'sb'); resolve({ code, signal }) })
      this.child.once('error', (err) => {
        this.spawnError = err
        resolve({ code: null, signal: null })
      })
    })
  }

  get pid (): number | undefined { return this.child.pid }

  /** The host pid of the sandbox's init from bwrap's JSON report, checked to be bwrap's child. */
  private async readSandboxInit (report: Readable): Promise<number | undefined> {
    let text = ''
    report.setEncoding('utf8')
    await new Promise<void>((resolve) => {
      // Act on the report as soon as it is whole: bwrap may keep the pipe open until it exits.
      report.on('data', (chunk: string) => {
        if (text.length < 4096) text += chunk
        if (text.includes('}')) resolve()
      })
      report.once('close', resolve)
      report.once('error', () => { resolve() })
    })
    report.resume()
    const pid = Number(/"child-pid"\s*:\s*(\d+)/.exec(text)?.[1])
    const pidNamespace = /"pid-namespace"\s*:\s*(\d+)/.exec(text)?.[1]
    if (!Number.isSafeInteger(pid)) return undefined
    const info = await readProcess(pid)
    if (info === undefined) return undefined
    // Make sure the pid still names the sandbox's init (bwrap may have exited, and init been reparented, meanwhile).
    const namespace = await readlink(`/proc/${pid}/ns/pid`).catch(() => undefined)
    const isInit = namespace !== undefined ? namespace === `pid:[${pidNamespace}]` : info.ppid === this.child.pid
    log('sandbox init: pid %d, %s', pid, isInit ? 'found' : 'gone')
    if (!isInit) return undefined
    this.seen.set(pid, info.startTime)
    return pid
  }

  /**
   * SIGKILL the step and everything it started that is still attached to it
   * (and to its cgroup), then wait until all of them have stopped running.
   * Processes are named by pid and start time, so a recycled pid is never hit.
   */
  async kill (timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    // A helper's process: its pid first (it is never killed by a number not known to be its own).
    await this.spawned
    // Note the tree while the step's own process still holds it together: once that dies, its
    // children are reparented away (bwrap's child may even be stuck mid-setup, waiting on its parent).
    await this.remember()
    // The step's own process first: its exit then reads "killed by SIGKILL", not whatever it made of its children's deaths.
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    // bwrap writes the report at once and closes the pipe; a bwrap that never started has nothing to report.
    await Promise.race([this.sandboxInit, delay(1000)])
    let pause = 1
    while (true) {
      await this.remember()
      let running = 0
      for (const [pid, startTime] of this.seen) {
        const info = await readProcess(pid)
        if (!isRunning(info) || info!.startTime !== startTime) {
          this.seen.delete(pid)
          continue
        }
        running++
        try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ }
      }
      if (running === 0) return true
      if (Date.now() > deadline) return false
      // A killed process is usually gone within a millisecond or two: look again soon, then less often.
      await delay(pause)
      pause = Math.min(pause * 2, 50)
    }
  }

  /** Add the step's processes to those to kill: its cgroup's members, or its tree (and, unsandboxed, its group and session) as /proc shows them. */
  private async remember (): Promise<void> {
    // Until its exit is seen, the step's own pid names it or nothing: it has its start time, and a
    // helper may have reaped it already (and the pid gone to another process) before saying so.
    const leader = this.child.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined
    const leaderStart = this.leaderStart
    if (leader !== undefined && leaderStart !== undefined && !this.seen.has(leader)) this.seen.set(leader, leaderStart)
    if (this.cgroupPids !== undefined) {
      for (const pid of await this.cgroupPids().catch(() => [])) {
        const info = await readProcess(pid)
        if (info !== undefined && !this.seen.has(pid)) this.seen.set(pid, info.startTime)
      }
      return
    }
    const table = await readProcessTable()
    const roots: number[] = []
    for (const [pid, startTime] of this.seen) if (table.get(pid)?.startTime === startTime) roots.push(pid)
    for (const root of roots) {
      for (const info of descendants(table, root)) this.seen.set(info.pid, info.startTime)
    }
    // Unsandboxed, orphans may keep the step's group or session (a group id is not reused while it has
    // members); in a sandbox the pid namespace holds them all.
    const id = this.child.pid
    if (!this.inSandbox && id !== undefined && leaderStart !== undefined) {
      for (const info of table.values()) {
        if ((info.pgrp === id || info.session === id) && info.startTime >= leaderStart) this.seen.set(info.pid, info.startTime)
      }
    }
  }
}
