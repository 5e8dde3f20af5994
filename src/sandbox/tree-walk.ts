import { rm as fsRm } from 'node:fs/promises'
import { SandboxUnavailableError, WorkspaceRemovalError } from './errors.js'
import { findTool, SYSTEM_PATH } from './host.js'
import { startHostProcess } from './host-process.js'
import { trace, traceNow, tracing } from '../util/trace.js'

/**
 * Walking and removing trees a build wrote, at any depth.
 *
 * A build controls its workspace's shape: 20 levels of 250-character names
 * make paths longer than PATH_MAX (4096), where every path-based call of
 * Node's fs (lstat, readdir, rm) fails with ENAMETOOLONG. Node has no
 * openat(2) family, so the walks are GNU find, rm and chmod, which work
 * relative to directory descriptors (gnulib's fts) and so reach any depth.
 * They never follow symlinks and never cross into another file system.
 */

export interface TreeTools { find: string, rm: string, chmod: string }

let tools: Promise<TreeTools> | undefined

/** find, rm and chmod (findutils and coreutils, essential on every Debian-like system); throws when one is missing. */
export async function treeTools (): Promise<TreeTools> {
  tools ??= (async () => {
    const [find, rm, chmod] = await Promise.all([findTool('find'), findTool('rm'), findTool('chmod')])
    if (find === undefined || rm === undefined || chmod === undefined) {
      tools = undefined
      throw new SandboxUnavailableError('find, rm or chmod is missing (they measure and remove workspaces at any depth); install findutils and coreutils')
    }
    return { find, rm, chmod }
  })()
  return await tools
}

/** Longest stderr kept from a tool: its first line says what went wrong. */
const MAX_STDERR = 4096
/** A walk of a tree within the workspace entry limit takes well under this; past it the walk counts as failed. */
export const TREE_WALK_TIMEOUT_MS = 120_000

export interface ToolRun {
  /** The tool finished on its own with exit 0. */
  ok: boolean
  /** The caller stopped it (it had seen enough). */
  stopped: boolean
  /** What went wrong, without any path: the errno text of the tool's first complaint, or how it ended. */
  problem?: string
}

/**
 * Run a tree tool. `onOutput` gets stdout as it comes and returns false to
 * stop the tool (it has seen enough). Bounded in time: a run past
 * `timeoutMs` is killed and reported as a problem.
 */
export async function runTreeTool (file: string, args: string[], onOutput?: (chunk: Buffer) => boolean, timeoutMs = TREE_WALK_TIMEOUT_MS): Promise<ToolRun> {
  return await new Promise((resolve) => {
    const at = tracing ? traceNow() : 0
    const child = startHostProcess(file, args, {
      env: { PATH: SYSTEM_PATH, LANG: 'C', LC_ALL: 'C' },
      stdout: onOutput === undefined ? 'ignore' : 'pipe',
      stderr: 'pipe'
    })
    if (tracing) trace(`spawn-${file.split('/').pop() ?? file}`, (traceNow() - at).toFixed(2), at)
    let stopped = false
    let timedOut = false
    let stderr = ''
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    child.stdout?.on('data', (chunk: Buffer) => {
      if (stopped) return
      if (onOutput?.(chunk) === false) {
        stopped = true
        child.kill('SIGKILL')
      }
    })
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (chunk: string) => { if (stderr.length < MAX_STDERR) stderr += chunk })
    child.closed.then(({ code, signal }) => {
      clearTimeout(timer)
      if (stopped) return resolve({ ok: false, stopped: true })
      if (timedOut) return resolve({ ok: false, stopped: false, problem: `no answer within ${Math.round(timeoutMs / 1000)} s` })
      if (code === 0 && stderr === '') return resolve({ ok: true, stopped: false })
      resolve({ ok: false, stopped: false, problem: complaint(stderr) ?? (signal !== null ? `killed by ${signal}` : `exit ${code ?? '?'}`) })
    }, (err: unknown) => {
      clearTimeout(timer)
      resolve({ ok: false, stopped: false, problem: `cannot run ${file.split('/').pop() ?? file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` })
    })
  })
}

/**
 * The errno text of a tool's first complaint, e.g. "Permission denied" out of
 * `find: '/var/tmp/…/x': Permission denied`: never the path, which is the
 * host's (and may be thousands of characters long).
 */
function complaint (stderr: string): string | undefined {
  const first = stderr.split('\n').find((line) => line.trim() !== '')
  if (first === undefined) return undefined
  const cause = first.slice(first.lastIndexOf(': ') + 2).trim()
  return cause === '' ? undefined : cause.slice(0, 200)
}

/** Give the owner back rwx on every directory (and rw on every file) of a tree a build locked up (mode 000). */
export async function reopenTree (root: string): Promise<ToolRun> {
  const { chmod } = await treeTools()
  return await runTreeTool(chmod, ['-R', 'u+rwX', '--', root])
}

/**
 * Delete a tree of any depth, without following symlinks: Node's fs.rm, and
 * where that fails (a path past PATH_MAX, a directory made unreadable) GNU rm
 * on its own file system, after restoring permissions a build took away.
 * Throws WorkspaceRemovalError (with no host path in its message) when
 * something stays.
 */
export async function removeTreeAtAnyDepth (root: string): Promise<void> {
  // In-process first: a few ms less per run than starting rm, and enough for any tree a path can reach.
  try {
    await fsRm(root, { recursive: true, force: true })
    return
  } catch {
    // A path past PATH_MAX, a directory a build locked up: GNU rm below.
  }
  const { rm } = await treeTools()
  const args = ['-rf', '--one-file-system', '--', root]
  let run = await runTreeTool(rm, args)
  if (run.ok) return
  await reopenTree(root)
  run = await runTreeTool(rm, args)
  if (!run.ok) throw new WorkspaceRemovalError(`a workspace could not be removed (${run.problem ?? 'unknown'})`)
}

/**
 * Split a stream of records ended by `separator` (a byte), across chunk
 * boundaries, calling `onRecord` for each whole one; `onRecord` returns false
 * to stop. Records longer than `maxRecord` bytes are passed truncated to it,
 * with `truncated` set.
 */
export function recordSplitter (separator: number, maxRecord: number, onRecord: (record: Buffer, truncated: boolean) => boolean): (chunk: Buffer) => boolean {
  let pending: Buffer[] = []
  let pendingBytes = 0
  let truncated = false
  return (chunk) => {
    let start = 0
    while (start < chunk.length) {
      const end = chunk.indexOf(separator, start)
      const piece = chunk.subarray(start, end === -1 ? chunk.length : end)
      if (pendingBytes < maxRecord) {
        const room = maxRecord - pendingBytes
        if (piece.length > room) truncated = true
        const kept = piece.subarray(0, room)
        pending.push(kept)
        pendingBytes += kept.length
      } else if (piece.length > 0) {
        truncated = true
      }
      if (end === -1) break
      const record = pending.length === 1 ? pending[0]! : Buffer.concat(pending)
      const keepGoing = onRecord(record, truncated)
      pending = []
      pendingBytes = 0
      truncated = false
      if (!keepGoing) return false
      start = end + 1
    }
    return true
  }
}
