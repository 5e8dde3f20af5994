import type { Readable, Writable } from 'node:stream'
import { SpawnHelper } from './spawn-helper.js'
import type { StepChild, StepSpawnOptions } from './step-process.js'

/**
 * The one way the node starts a process that is not a sandboxed step: the
 * tree tools on workspaces, git and gpgv for watches, mmdebstrap, cp, du
 * and flock for environments, probes of host tools, the steps of a node
 * without a sandbox, and the tool sandbox's bwrap (diffoscope, git).
 *
 * Why: LevelDB opens the ledger's log, LOCK, LOG and MANIFEST without
 * close-on-exec, and Node can neither set it nor close a descriptor in a
 * child before exec. A process the node spawned itself held them all open,
 * for writing. These processes are started by a spawn helper instead (the
 * steps' mechanism, spawn-helper.ts), which closed at its own start every
 * descriptor it inherited without close-on-exec: a process started here
 * holds its stdio and nothing else of the node's.
 *
 * One helper serves the whole process. It is started at the first use and
 * stopped once no process of its own has run for HOST_HELPER_IDLE_MS, so an
 * idle node holds none. Every process runs in a session (and process group)
 * of its own; the node's death kills it (the helper sees its parent go and
 * kills every group it started).
 *
 * Nothing in src/ but the helper's two modules loads Node's child_process:
 * test/unit/child-process.test.ts holds everything else to this one.
 */

/** A helper without processes for this long is stopped (a restart costs a Node.js start: ~150 ms, 16 ms of the node's CPU; bench/host-tools.ts). */
export const HOST_HELPER_IDLE_MS = 30_000

export interface HostProcessOptions {
  /** The whole environment (nothing of the node's is passed on); `PATH` in it is where `file` is looked up. */
  env: Record<string, string>
  /** Default `/`. */
  cwd?: string
  /** A pipe, or /dev/null (the default). */
  stdin?: 'pipe' | 'ignore'
  stdout?: 'pipe' | 'ignore'
  stderr?: 'pipe' | 'ignore'
}

export interface HostExit { code: number | null, signal: NodeJS.Signals | null }

export interface HostProcess {
  /** The pipes asked for (null where /dev/null). Piped output must be read, or `closed` never settles. */
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  /** Its pid once it started; undefined if it never did. */
  readonly started: Promise<number | undefined>
  /** Resolves once it has exited and its piped output has ended; rejects (an error with its `code`, e.g. ENOENT) if it could not start. */
  readonly closed: Promise<HostExit>
  /** Signal the process (default SIGKILL); `group` signals its whole process group. Nothing once it has exited. */
  kill: (signal?: NodeJS.Signals, options?: { group?: boolean }) => void
}

let helper: SpawnHelper | undefined
let running = 0
let idleTimer: NodeJS.Timeout | undefined

function sharedHelper (): SpawnHelper {
  clearTimeout(idleTimer)
  idleTimer = undefined
  helper ??= new SpawnHelper('host')
  return helper
}

function settled (): void {
  running--
  if (running > 0 || helper === undefined) return
  idleTimer = setTimeout(() => {
    idleTimer = undefined
    if (running > 0) return
    helper?.close()
    helper = undefined
  }, HOST_HELPER_IDLE_MS)
  idleTimer.unref()
}

/**
 * A step of a node without a sandbox (--sandbox none), as StepProcess
 * starts one (detached, its stdio per `options.stdio`), from the shared
 * helper.
 */
export function spawnOnHost (file: string, args: string[], options: StepSpawnOptions): StepChild {
  running++
  const child = sharedHelper().spawn(file, args, options)
  child.once('exit', settled)
  child.once('error', settled)
  return child
}

/** Start `file` (looked up on `options.env.PATH` unless absolute) with `args`, holding nothing of the node's but what it is given. */
export function startHostProcess (file: string, args: string[], options: HostProcessOptions): HostProcess {
  const stdio = [options.stdin ?? 'ignore', options.stdout ?? 'ignore', options.stderr ?? 'ignore']
  running++
  const child = sharedHelper().spawn(file, args, { cwd: options.cwd ?? '/', env: options.env, stdio })
  const stdout = child.stdio[1] ?? null
  const stderr = child.stdio[2] ?? null
  const exited = new Promise<HostExit>((resolve, reject) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
    child.once('error', reject)
  })
  const ended = (stream: Readable | null): Promise<void> => stream === null || stream.readableEnded
    ? Promise.resolve()
    : new Promise((resolve) => {
      stream.once('end', resolve)
      stream.once('close', resolve)
    })
  const closed = exited.then(async (exit) => {
    await Promise.all([ended(stdout), ended(stderr)])
    return exit
  })
  void closed.then(settled, settled)
  return {
    stdin: child.stdin,
    stdout,
    stderr,
    started: child.whenSpawned.then((known) => known?.pid),
    closed,
    kill: (signal = 'SIGKILL', kill = {}) => {
      if (kill.group === true) child.killGroup(signal)
      else child.kill(signal)
    }
  }
}

export interface HostCommandOptions {
  env: Record<string, string>
  cwd?: string
  /** Killed (its group) past this; the result says `timedOut`. */
  timeoutMs: number
  /** Bytes given on stdin (else /dev/null). */
  input?: Buffer | string
  /** Output kept of stdout and of stderr each (default 1 MiB); the rest is read and dropped. */
  maxOutputBytes?: number
  signal?: AbortSignal
}

export interface HostCommandResult extends HostExit {
  stdout: string
  stderr: string
  timedOut: boolean
  /** Either output went past `maxOutputBytes` (what was kept is its start). */
  truncated: boolean
}

/** Run a short command to its end and take its output (UTF-8). Rejects only when it cannot start. */
export async function runHostCommand (file: string, args: string[], options: HostCommandOptions): Promise<HostCommandResult> {
  options.signal?.throwIfAborted()
  const max = options.maxOutputBytes ?? 1024 * 1024
  const child = startHostProcess(file, args, {
    env: options.env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    stdout: 'pipe',
    stderr: 'pipe'
  })
  let truncated = false
  const collect = (stream: Readable): () => string => {
    const chunks: Buffer[] = []
    let size = 0
    stream.on('data', (chunk: Buffer) => {
      if (size >= max) {
        truncated = true
        return
      }
      const kept = chunk.subarray(0, max - size)
      if (kept.length < chunk.length) truncated = true
      chunks.push(kept)
      size += kept.length
    })
    return () => Buffer.concat(chunks).toString('utf8')
  }
  const stdout = collect(child.stdout!)
  const stderr = collect(child.stderr!)
  // A command that exits without reading its input: the broken pipe is not an error of ours.
  child.stdin?.on('error', () => {})
  child.stdin?.end(options.input)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL', { group: true })
  }, options.timeoutMs)
  const abort = (): void => { child.kill('SIGKILL', { group: true }) }
  options.signal?.addEventListener('abort', abort, { once: true })
  try {
    const exit = await child.closed
    return { ...exit, stdout: stdout(), stderr: stderr(), timedOut, truncated }
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', abort)
  }
}
