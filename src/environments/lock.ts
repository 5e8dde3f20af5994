import { startHostProcess } from '../sandbox/host-process.js'
import { DeadlineError } from '../util/errors.js'
import { TOOL_PATH } from './command.js'
import { EnvironmentCreationError } from './errors.js'

/** A held lock; released by `release()`, or by the kernel when this process dies. */
export interface HeldLock {
  release: () => Promise<void>
}

export interface LockOptions {
  timeoutMs: number
  signal?: AbortSignal
  /** Called once if the lock is not free at once (another process holds it). */
  onWait?: () => void
}

/** How long a lock may take to be granted before it counts as held by someone else. */
const WAIT_NOTICE_MS = 250

/**
 * An exclusive lock on a file between processes, held by a small `flock(1)`
 * child (util-linux) for as long as its stdin stays open: the kernel drops
 * it when the child or this process dies, so a crash never leaves a stale
 * lock behind, and Node needs no native module for it.
 */
export async function acquireLock (path: string, options: LockOptions): Promise<HeldLock> {
  options.signal?.throwIfAborted()
  const seconds = Math.max(1, Math.ceil(options.timeoutMs / 1000))
  const child = startHostProcess('flock', ['--exclusive', '--wait', String(seconds), path, 'sh', '-c', 'echo locked; exec cat'], {
    env: { PATH: TOOL_PATH },
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe'
  })
  const exited = child.closed.then(({ code }) => code, () => null)
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk.slice(0, 1000) })
  const notice = setTimeout(() => { options.onWait?.() }, WAIT_NOTICE_MS)
  const abort = (): void => { child.kill('SIGKILL', { group: true }) }
  options.signal?.addEventListener('abort', abort, { once: true })
  try {
    const granted = await new Promise<boolean>((resolve) => {
      child.stdout!.setEncoding('utf8').once('data', () => { resolve(true) })
      void exited.then(() => { resolve(false) })
    })
    options.signal?.throwIfAborted()
    if (!granted) {
      const code = await exited
      if (code === 1 && stderr === '') throw new DeadlineError(`the lock ${path} was still held after ${seconds} s`)
      throw new EnvironmentCreationError(`cannot lock ${path} with flock (util-linux): ${stderr.trim() || `exit ${String(code)}`}`)
    }
  } catch (err) {
    child.kill('SIGKILL', { group: true })
    await exited
    throw err
  } finally {
    clearTimeout(notice)
    options.signal?.removeEventListener('abort', abort)
  }
  let released: Promise<void> | undefined
  return {
    release: async () => {
      released ??= (async () => {
        child.stdin!.end()
        await exited
      })()
      await released
    }
  }
}

/** Run `fn` holding the lock on `path`. */
export async function withLock<T> (path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, options)
  try {
    return await fn()
  } finally {
    await lock.release()
  }
}
