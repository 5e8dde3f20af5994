import { StreamClosedError } from '../errors.js'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { DeadlineError } from '../../util/errors.js'

/**
 * The iterator's next value, or a DeadlineError (after calling `onTimeout`,
 * which should abort the stream underneath) if none comes within `ms`.
 */
export async function nextWithin<T> (iterator: AsyncIterator<T>, ms: number, what: string, onTimeout: (err: Error) => void): Promise<IteratorResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new DeadlineError(`no ${what} within ${ms} ms`)
      onTimeout(err)
      reject(err)
    }, ms)
  })
  try {
    return await Promise.race([iterator.next(), deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Send bytes, then wait while more than `highWaterBytes` are queued on the
 * stream. `send()` returning false is not enough of a bound: every drain of
 * the connection lets one more write through even when the peer's window is
 * shut, so a reader that stops reading would otherwise grow our buffer without
 * end. Fails if the queue makes no progress for `ms`.
 */
export async function sendWithBackpressure (stream: Stream, data: Uint8Array | Uint8ArrayList, options: { highWaterBytes: number, ms: number, signal: AbortSignal }): Promise<void> {
  stream.send(data)
  let queued = stream.writeBufferLength
  let lastProgress = Date.now()
  while (queued > options.highWaterBytes) {
    const left = options.ms - (Date.now() - lastProgress)
    if (left <= 0) throw new DeadlineError(`the peer read nothing for ${options.ms} ms`)
    await streamEvent(stream, ['drain', 'idle', 'close'], left, options.signal)
    if (stream.status !== 'open') throw new StreamClosedError(`the stream was ${stream.status} while sending`)
    if (stream.writeBufferLength < queued) lastProgress = Date.now()
    queued = stream.writeBufferLength
  }
}

/** Resolve at the first of `events`, or after `ms`, whichever comes first; reject if `signal` aborts. */
async function streamEvent (stream: Stream, events: Array<'drain' | 'idle' | 'close'>, ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer)
      for (const name of events) stream.removeEventListener(name, fired)
      signal.removeEventListener('abort', aborted)
    }
    const fired = (): void => {
      done()
      resolve()
    }
    const aborted = (): void => {
      done()
      reject(signal.reason)
    }
    const timer = setTimeout(fired, ms)
    for (const name of events) stream.addEventListener(name, fired)
    signal.addEventListener('abort', aborted)
  })
}
