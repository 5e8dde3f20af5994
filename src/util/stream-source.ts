import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface BoundedSourceOptions {
  /** Pause the stream once this many bytes are buffered unread; resume below half of it. */
  highWaterBytes: number
  signal?: AbortSignal
}

/**
 * Read a libp2p message stream as an async iterable whose buffer is bounded.
 * The stream's own iterator buffers without limit when the consumer is slow;
 * this one pauses the stream (which stops the muxer's window updates, so the
 * sender stalls) once `highWaterBytes` are waiting, and resumes when the
 * consumer catches up. Past the muxer window, the stream's maxReadBufferLength
 * resets a sender that ignores flow control.
 */
export async function * boundedSource (stream: Stream, options: BoundedSourceOptions): AsyncGenerator<Uint8Array | Uint8ArrayList> {
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
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    queue.push(evt.data)
    queuedBytes += evt.data.byteLength
    if (queuedBytes >= options.highWaterBytes && stream.readStatus === 'readable') stream.pause()
    notify()
  }
  const onEnd = (): void => {
    ended = true
    notify()
  }
  const onClose = (evt: Event): void => {
    ended = true
    const error = (evt as Event & { error?: Error }).error
    if (error !== undefined) failure = error
    notify()
  }
  const onAbort = (): void => {
    ended = true
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
        if (queuedBytes < options.highWaterBytes / 2 && stream.readStatus === 'paused') {
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
