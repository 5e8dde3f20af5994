import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, readdirSync, readFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import type { Readable, Writable } from 'node:stream'

/**
 * The spawn helper's process (see spawn-helper.ts): it starts the node's
 * sandbox processes, so that the fork of each one copies this small process,
 * not the node's large heap, and does not stop the node's event loop.
 *
 * It imports Node's built-in modules only: it is its own entry of the bundle
 * and holds nothing else in memory.
 *
 * Protocol (Node's IPC channel, JSON): the node sends `{ op: 'spawn', id,
 * file, args, cwd, env, uid?, gid?, pipes, feed? }` and `{ op: 'kill', id, signal }`;
 * the helper answers `{ id, pid, startTime }` (or `{ id, error }`), then one
 * message per pipe of `pipes` carrying its socket, `{ id, fd }`, then `{ id,
 * exit: { code, signal } }` once it has reaped the process.
 */

/** The request of a spawn: `pipes` lists the fds (0 to 4) that get a pipe; the others are /dev/null. */
export interface SpawnRequest {
  op: 'spawn'
  id: number
  file: string
  args: string[]
  cwd: string
  env: Record<string, string>
  uid?: number
  gid?: number
  pipes: number[]
  /** A pipe on `fd` (beyond `pipes`), fed these bytes (base64) and closed: bwrap's seccomp program. */
  feed?: { fd: number, data: string }
}

/** `group`: signal the process's whole group (it leads one: it is started detached), while it is not reaped. */
export interface KillRequest { op: 'kill', id: number, signal: NodeJS.Signals, group?: boolean }

const children = new Map<number, ChildProcess>()

/** How often the helper looks whether the node is still there (see the end of this file). */
const ORPHAN_CHECK_MS = 500

/** Clock ticks after boot when `pid` started, read before this process can reap it (so the pid still names it). */
function startTimeOf (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const value = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
    return Number.isSafeInteger(value) ? value : undefined
  } catch {
    return undefined
  }
}

function send (message: unknown, handle?: Readable): void {
  process.send?.(message, handle as never, undefined, () => {})
}

function start (request: SpawnRequest): void {
  const stdio: Array<'pipe' | 'ignore'> = [0, 1, 2, 3, 4].map((fd) => request.pipes.includes(fd) ? 'pipe' as const : 'ignore' as const)
  if (request.feed !== undefined) {
    while (stdio.length <= request.feed.fd) stdio.push('ignore')
    stdio[request.feed.fd] = 'pipe'
  }
  const child = spawn(request.file, request.args, {
    cwd: request.cwd,
    env: request.env,
    stdio,
    detached: true,
    ...(request.uid === undefined ? {} : { uid: request.uid }),
    ...(request.gid === undefined ? {} : { gid: request.gid })
  })
  if (child.pid === undefined) {
    child.once('error', (err: NodeJS.ErrnoException) => { send({ id: request.id, error: { message: err.message, code: err.code } }) })
    for (const stream of child.stdio) stream?.destroy()
    return
  }
  children.set(request.id, child)
  if (request.feed !== undefined) {
    // A few hundred bytes: they fit in the pipe, nothing waits for the reader. A reader gone first is its own failure.
    const feed = child.stdio[request.feed.fd] as Writable | null | undefined
    feed?.on('error', () => {})
    feed?.end(Buffer.from(request.feed.data, 'base64'))
  }
  const pipes = request.pipes.map((fd) => ({ fd, stream: child.stdio[fd] as Readable }))
  // Not a byte may be read here: the sockets go to the node as they are (a socket's handle reads as soon
  // as it is made, and one being sent would drop what it read). Same tick as the spawn: nothing was read yet.
  for (const { stream } of pipes) (stream as unknown as { _handle?: { readStop?: () => void } })._handle?.readStop?.()
  send({ id: request.id, pid: child.pid, startTime: startTimeOf(child.pid) })
  for (const { fd, stream } of pipes) send({ id: request.id, fd }, stream)
  child.once('exit', (code, signal) => {
    children.delete(request.id)
    send({ id: request.id, exit: { code, signal } })
  })
}

function kill (request: KillRequest): void {
  const child = children.get(request.id)
  if (request.group !== true || child?.pid === undefined) {
    child?.kill(request.signal)
    return
  }
  try {
    process.kill(-child.pid, request.signal)
  } catch {}
}

/** The IPC channel's descriptor: the node forks this helper with stdio ['ignore', 'ignore', 'inherit', 'ipc']. */
const CHANNEL_FD = 3

/** Linux's O_CLOEXEC, as /proc/self/fdinfo prints the flags (octal). */
const O_CLOEXEC = 0o2000000

/**
 * Close every descriptor inherited from the node beyond stdio and the
 * channel. The node holds some without close-on-exec (LevelDB opens its log,
 * manifest and lock so, and whatever started the node may pass more), and a
 * spawn passes those on: every sandboxed step would hold the node's ledger
 * open for writing. Node's own descriptors here are all close-on-exec.
 */
function closeInherited (): void {
  for (const name of readdirSync('/proc/self/fd')) {
    const fd = Number(name)
    if (!Number.isInteger(fd) || fd <= 2 || fd === CHANNEL_FD) continue
    let flags: string | undefined
    try {
      flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1]
    } catch {
      continue // the one readdir used, closed meanwhile
    }
    if (flags === undefined || (Number.parseInt(flags, 8) & O_CLOEXEC) !== 0) continue
    try {
      closeSync(fd)
    } catch {}
  }
}

/**
 * Every process below `roots`, read from /proc at once (a child's parent is
 * in its stat line, after the command name in parentheses).
 */
function descendantsOf (roots: number[]): number[] {
  const childrenOf = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1')
    } catch {
      continue // gone meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
    const siblings = childrenOf.get(ppid)
    if (siblings === undefined) childrenOf.set(ppid, [Number(name)])
    else siblings.push(Number(name))
  }
  const found: number[] = []
  const queue = [...roots]
  while (queue.length > 0) {
    for (const pid of childrenOf.get(queue.pop()!) ?? []) {
      found.push(pid)
      queue.push(pid)
    }
  }
  return found
}

/**
 * The node is gone: so are its steps (nobody reads their output or reports
 * them now), and so is the helper. Each process it started, its group, and
 * everything below it, whatever group or session: bwrap's sandboxed child
 * runs in a session of its own, and when bwrap dies while setting the
 * sandbox up, that child waits for it for ever (its parent-death signal was
 * cleared when it changed credentials, so --die-with-parent misses it).
 */
function orphaned (): never {
  const roots = [...children.values()].flatMap((child) => child.pid === undefined ? [] : [child.pid])
  // The tree first, then the kills: a process whose parent was killed first would be found under init instead.
  let below: number[] = []
  try {
    below = descendantsOf(roots)
  } catch {}
  for (const pid of roots) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {}
  }
  for (const pid of below) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  process.exit(0)
}

/**
 * Lower this thread's priority by the `--nice=N` the node gave (BUILD_NICE in
 * spawn-helper.ts), as nice(1) does: N more than the node's own, at most 19,
 * so builds yield to a node that itself runs niced. On Linux a nice value is
 * a thread's, and a process forked from this thread starts with it, so every
 * build and tool started here yields the CPU to the node. Lowering needs no
 * privilege; where it fails, builds run at the node's priority, as before,
 * and the helper says so.
 */
function yieldToTheNode (): void {
  const option = process.argv.find((arg) => arg.startsWith('--nice='))
  if (option === undefined) return
  try {
    setPriority(Math.min(19, getPriority() + Number(option.slice('--nice='.length))))
  } catch (err) {
    process.stderr.write(`buildhaus spawn helper: cannot lower the priority of builds (${option}): ${(err as Error).message}; they run at the node's\n`)
  }
}

closeInherited()
yieldToTheNode()
const parent = process.ppid
process.on('message', (message: SpawnRequest | KillRequest) => {
  if (message.op === 'spawn') start(message)
  else if (message.op === 'kill') kill(message)
})
process.on('disconnect', orphaned)
// 'disconnect' alone is not enough: Node postpones it while a socket this helper sent awaits the node's
// acknowledgement, for ever if the node died first. A closed channel or a new parent says the same.
setInterval(() => { if (process.channel == null || process.ppid !== parent) orphaned() }, ORPHAN_CHECK_MS).unref()
