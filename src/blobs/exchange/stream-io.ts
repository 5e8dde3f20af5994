import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { BuildhausError, DeadlineError } from '../../util/errors.js'

export interface PausingSourceOptions {
  highWaterBytes: number
  lowWaterBytes: number
}

/**
 * A stream's incoming bytes as an async iterable that pauses the stream while
 * more than `highWaterBytes` wait for the consumer, and resumes below
 * `lowWaterBytes`. libp2p's own iterator queues without bound, so a fast peer
 * and a slow disk would otherwise pile a whole blob up in memory.
 *
 * Ends when the remote closes its side and everything was read; throws as soon
 * as the stream is aborted or reset, dropping what is queued.
 */
export async function * pausingSource (stream: Stream, options: PausingSourceOptions): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  const queue: Array<Uint8Array | Uint8ArrayList> = []
  let queuedBytes = 0
  let ended = stream.readableEnded
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = (): void => {
    const resolve = wake
    wake = undefined
    resolve?.()
  }
  const pauseIfFull = (): void => {
    if (queuedBytes > options.highWaterBytes && stream.readStatus === 'readable') stream.pause()
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    queue.push(evt.data)
    queuedBytes += evt.data.byteLength
    // Pause in a microtask, not here: resume() delivers its buffer before it
    // re-opens the muxer's window, so a pause from inside that delivery would
    // be undone at once and the window left open while the buffer grows.
    if (queuedBytes > options.highWaterBytes) queueMicrotask(pauseIfFull)
    notify()
  }
  const onEnd = (): void => {
    ended = true
    notify()
  }
  const onClose = (evt: StreamCloseEvent): void => {
    if (evt.error !== undefined) failure = evt.error
    // A clean close can come while a paused stream still buffers data: only 'end' says all was delivered.
    if (stream.readableEnded) ended = true
    notify()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  try {
    while (true) {
      if (failure !== undefined) throw failure
      const chunk = queue.shift()
      if (chunk !== undefined) {
        queuedBytes -= chunk.byteLength
        if (queuedBytes <= options.lowWaterBytes && stream.readStatus === 'paused') stream.resume()
        yield chunk
        continue
      }
      if (ended) return
      await new Promise<void>((resolve) => { wake = resolve })
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('close', onClose)
  }
}

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

/** A stream that closed or was reset while we still had bytes for it. */
export class StreamClosedError extends BuildhausError {
  override name = 'StreamClosedError'
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
