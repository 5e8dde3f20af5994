import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface BoundedSourceOptions {
  /** Pause the stream once more than this many bytes wait unread. */
  highWaterBytes: number
  /** Resume once the unread bytes are down to this (default: half of highWaterBytes). */
  lowWaterBytes?: number
  /** Aborting ends the iteration with the signal's reason. */
  signal?: AbortSignal
}

/**
 * Read a libp2p message stream as an async iterable whose buffer is bounded.
 * The stream's own iterator buffers without limit when the consumer is slow;
 * this one pauses the stream (which stops the muxer's window updates, so the
 * sender stalls) once `highWaterBytes` are waiting, and resumes when the
 * consumer catches up. Past the muxer window, the stream's maxReadBufferLength
 * resets a sender that ignores flow control.
 *
 * Ends when the remote closed its side and everything was read; throws as soon
 * as the stream is aborted or reset (or the signal aborts), dropping what is queued.
 */
export async function * boundedSource (stream: Stream, options: BoundedSourceOptions): AsyncGenerator<Uint8Array | Uint8ArrayList> {
  const lowWaterBytes = options.lowWaterBytes ?? options.highWaterBytes / 2
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
  const onAbort = (): void => {
    failure = options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted')
    notify()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('close', onClose)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  if (options.signal?.aborted === true) onAbort()
  try {
    while (true) {
      if (failure !== undefined) throw failure
      const chunk = queue.shift()
      if (chunk !== undefined) {
        queuedBytes -= chunk.byteLength
        if (queuedBytes <= lowWaterBytes && stream.readStatus === 'paused') {
          try { stream.resume() } catch { /* the stream closed meanwhile; 'close' ends the loop */ }
        }
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
    options.signal?.removeEventListener('abort', onAbort)
  }
}
