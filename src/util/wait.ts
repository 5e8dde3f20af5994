import { setTimeout as sleep } from 'node:timers/promises'
import { DeadlineError } from './errors.js'

export interface WaitOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number
  /** How often to re-check the condition. */
  intervalMs?: number
  /** Said in the error when the deadline passes: what we were waiting for. */
  what?: string
  signal?: AbortSignal
}

/**
 * Await `condition()` becoming truthy, re-checking every `intervalMs`, and fail
 * with a DeadlineError naming `what` once `timeoutMs` has passed. Used wherever
 * something depends on the network: never sleep a fixed time and hope.
 */
export async function waitFor<T> (condition: () => T | undefined | null | false | Promise<T | undefined | null | false>, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  const interval = options.intervalMs ?? 50
  let lastError: unknown
  while (true) {
    options.signal?.throwIfAborted()
    try {
      const value = await condition()
      if (value != null && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const suffix = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new DeadlineError(`timed out after ${options.timeoutMs} ms waiting for ${options.what ?? 'a condition'}${suffix}`)
    }
    await delay(interval, options.signal)
  }
}

/**
 * A cancellable pause (node:timers/promises). Only for pacing loops (polling,
 * retry back-off), never to wait for an outcome. An abort — also one that
 * happened before the call — rejects with the signal's own reason, as every
 * other wait here does, not with the timer's AbortError wrapping it.
 */
export async function delay (ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, signal === undefined ? undefined : { signal })
  } catch (err) {
    if (signal?.aborted === true) throw signal.reason
    throw err
  }
}
