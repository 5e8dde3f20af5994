import * as lp from 'it-length-prefixed'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream, UnexpectedEOFError } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import { BuildhausError, DeadlineError, EnvironmentError, InvalidInputError, describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import { BlobHashMismatchError, BlobNotFoundError, BlobOverRelayLimitError, BlobTooLargeError, BlobUnavailableError, PeerBusyError, type FetchAttempt } from '../errors.js'
import { assertBlobHash } from '../hash.js'
import type { OpenedBlob } from '../store.js'
import {
  CHUNK_TIMEOUT_MS, DATA_FRAME_BYTES, DEFAULT_FAN_OUT, DEFAULT_MAX_BLOB_BYTES, FETCH_TIMEOUT_MS, HEADER_TIMEOUT_MS,
  MAX_CONCURRENT_SERVES, MAX_DATA_FRAME_BYTES, MAX_FAN_OUT, MAX_REQUEST_BYTES, MAX_STREAMS_PER_CONNECTION,
  PAUSED_READ_BUFFER_BYTES, PROTOCOL, READ_HIGH_WATER_BYTES, READ_LOW_WATER_BYTES, RELAY_OVERHEAD_BYTES, RELAY_OVERHEAD_RATIO,
  REQUEST_TIMEOUT_MS, SERVE_TIMEOUT_MS, WRITE_HIGH_WATER_BYTES
} from './constants.js'
import { decodeHeader, decodeRequest, encodeHeader, encodeRequest, type BlobResponseHeader } from './messages.js'
import { boundedSource } from '../../util/stream-source.js'
import { nextWithin, sendWithBackpressure } from './stream-io.js'
import type { BlobExchangeComponents, BlobExchangeInit, BlobExchangeStats, FetchOptions, FetchResult } from './index.js'

const log = componentLogger('blobs:exchange')

/** One fetch of one hash, shared by every caller that asks for it meanwhile. */
interface FetchJob {
  hash: string
  maxBytes: number
  fanOut: number
  pin: boolean
  /** Candidates not yet asked, in preference order; later callers append theirs. */
  queue: PeerId[]
  seen: Set<string>
  waiters: number
  controller: AbortController
  promise: Promise<FetchResult>
}

/**
 * Serves the blobs of a BlobStore to peers and fetches missing ones from
 * them over `/buildhaus/blob/1.0.0`.
 *
 * A fetch asks its candidates in preference order (or a few at once with
 * `fanOut`), streams the bytes into the store while hashing them, and keeps
 * them only if they hash to the name asked for. A peer that lacks the blob,
 * sends wrong bytes, too many bytes, garbage, or stalls is left for the next.
 *
 * Direct connections are preferred: a candidate reachable only through a
 * relay is asked after the others, over the connection already open (an
 * open direct one first), and only for a blob that fits what the relayed
 * connection may still carry. A relayed transfer cut short (the relay's
 * limits, or DCUtR replacing the connection by a direct one) is retried once.
 */
export class BlobExchange {
  private readonly components: BlobExchangeComponents
  private readonly fanOut: number
  private readonly headerTimeoutMs: number
  private readonly chunkTimeoutMs: number
  private readonly fetchTimeoutMs: number
  private readonly requestTimeoutMs: number
  private readonly serveTimeoutMs: number
  private readonly maxConcurrentServes: number
  private readonly inflight = new Map<string, FetchJob>()
  private readonly counters: BlobExchangeStats = { served: 0, servedBytes: 0, answeredMissing: 0, answeredBusy: 0, fetched: 0, fetchedBytes: 0, failedAttempts: 0, fetchedRelayed: 0, servedRelayed: 0 }
  private serving = 0
  private running = false
  private lifetime = new AbortController()

  constructor (components: BlobExchangeComponents, init: BlobExchangeInit = {}) {
    this.components = components
    this.fanOut = clampFanOut(init.fanOut ?? DEFAULT_FAN_OUT)
    this.headerTimeoutMs = init.headerTimeoutMs ?? HEADER_TIMEOUT_MS
    this.chunkTimeoutMs = init.chunkTimeoutMs ?? CHUNK_TIMEOUT_MS
    this.fetchTimeoutMs = init.fetchTimeoutMs ?? FETCH_TIMEOUT_MS
    this.requestTimeoutMs = init.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
    this.serveTimeoutMs = init.serveTimeoutMs ?? SERVE_TIMEOUT_MS
    this.maxConcurrentServes = init.maxConcurrentServes ?? MAX_CONCURRENT_SERVES
  }

  async start (): Promise<void> {
    if (this.running) return
    this.lifetime = new AbortController()
    await this.components.network.handle(PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, {
      maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
      maxOutboundStreams: MAX_STREAMS_PER_CONNECTION,
      // Peers behind NAT may only reach each other through a relay; the relay bounds what it carries.
      runOnLimitedConnection: true
    })
    this.running = true
  }

  /** Stop serving, and abort uploads and fetches in progress. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.lifetime.abort(new EnvironmentError('the blob exchange stopped'))
    await this.components.network.unhandle(PROTOCOL)
  }

  isStarted (): boolean {
    return this.running
  }

  stats (): BlobExchangeStats {
    return { ...this.counters }
  }

  /**
   * Make sure the store holds the blob `hash`, fetching it from `options.from`
   * if it is not already here. Resolves once the verified blob is stored.
   */
  async fetch (hash: string, options: FetchOptions): Promise<FetchResult> {
    assertBlobHash(hash)
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BLOB_BYTES
    options.signal?.throwIfAborted()
    if (!this.running) throw new EnvironmentError('the blob exchange is not running; start it before fetching')

    if (await this.components.store.verify(hash)) {
      const stat = await this.components.store.stat(hash)
      if (stat !== undefined) {
        this.components.store.touch(hash)
        if (stat.size > maxBytes) throw new BlobTooLargeError(`blob ${hash} is ${stat.size} bytes, more than the ${maxBytes} allowed`)
        if (options.pin === true) await this.components.store.pin(hash)
        return { hash, size: stat.size }
      }
    }

    let job = this.inflight.get(hash)
    const joined = job !== undefined
    if (job === undefined) {
      job = this.startJob(hash, maxBytes, clampFanOut(options.fanOut ?? this.fanOut), options.pin === true)
    }
    for (const peer of options.from) {
      const key = peer.toString()
      if (!job.seen.has(key)) {
        job.seen.add(key)
        job.queue.push(peer)
      }
    }
    job.waiters++
    let result: FetchResult
    try {
      result = await untilAborted(job.promise, options.signal)
    } finally {
      job.waiters--
      // The last interested caller gave up: stop fetching for nobody.
      if (job.waiters === 0 && this.inflight.get(hash) === job) {
        this.inflight.delete(hash)
        job.controller.abort(options.signal?.reason ?? new EnvironmentError('every caller gave up on the fetch'))
      }
    }
    if (result.size > maxBytes) throw new BlobTooLargeError(`blob ${hash} is ${result.size} bytes, more than the ${maxBytes} allowed`)
    // The first caller's pin went in with the bytes; a later caller's is added now.
    if (joined && options.pin === true) await this.components.store.pin(hash)
    return result
  }

  private startJob (hash: string, maxBytes: number, fanOut: number, pin: boolean): FetchJob {
    const job: FetchJob = {
      hash,
      maxBytes,
      fanOut,
      pin,
      queue: [],
      seen: new Set(),
      waiters: 0,
      controller: new AbortController(),
      promise: Promise.resolve(undefined as unknown as FetchResult)
    }
    // Start on the next tick, once the first caller has queued its candidates.
    job.promise = Promise.resolve().then(async () => await this.runJob(job)).finally(() => {
      if (this.inflight.get(hash) === job) this.inflight.delete(hash)
    })
    // A rejection nobody awaits any more (every caller aborted) is expected, not a crash.
    job.promise.catch(() => {})
    this.inflight.set(hash, job)
    return job
  }

  private async runJob (job: FetchJob): Promise<FetchResult> {
    const attempts: FetchAttempt[] = []
    const won = new AbortController()
    const signal = AbortSignal.any([job.controller.signal, won.signal, this.lifetime.signal])
    let winner: FetchResult | undefined
    // Relay last: a peer reachable only through a relay is asked after every other candidate.
    const relayOnly = job.queue.filter((peer) => this.onlyRelayed(peer))
    job.queue = [...job.queue.filter((peer) => !relayOnly.includes(peer)), ...relayOnly]
    const retried = new Set<string>()

    const worker = async (): Promise<void> => {
      while (winner === undefined && !signal.aborted) {
        const peer = job.queue.shift()
        if (peer === undefined) return
        const used: { relayed?: boolean } = {}
        try {
          const result = await this.fetchFrom(peer, job.hash, job.maxBytes, job.pin, signal, used)
          if (winner === undefined) {
            winner = result
            won.abort()
          }
          return
        } catch (err) {
          if (signal.aborted) return
          this.counters.failedAttempts++
          attempts.push({ peer: peer.toString(), reason: describeError(err) })
          log('fetching %s from %p failed: %s', job.hash, peer, describeError(err))
          // A relayed transfer that broke off (not an answer of the peer's) may work on the next connection.
          if (used.relayed === true && !retried.has(peer.toString()) && isTransportFailure(err)) {
            retried.add(peer.toString())
            job.queue.push(peer)
          }
        }
      }
    }
    await Promise.all(Array.from({ length: job.fanOut }, worker))

    if (winner !== undefined) {
      this.counters.fetched++
      this.counters.fetchedBytes += winner.size
      return winner
    }
    if (job.controller.signal.aborted) throw job.controller.signal.reason
    if (this.lifetime.signal.aborted) throw this.lifetime.signal.reason
    throw new BlobUnavailableError(job.hash, attempts)
  }

  /** True when every open connection to the peer is limited (relayed), so a transfer would cross a relay. */
  private onlyRelayed (peer: PeerId): boolean {
    const open = this.components.network.getConnections(peer).filter((c) => c.status === 'open')
    return open.length > 0 && open.every((c) => c.limits !== undefined)
  }

  /** An open connection to the peer, unlimited ones first; else dial it (libp2p tries direct addresses before relays). */
  private async connectionTo (peer: PeerId, signal: AbortSignal): Promise<Connection> {
    const open = this.components.network.getConnections(peer).filter((c) => c.status === 'open')
    const best = open.find((c) => c.limits === undefined) ?? open[0]
    return best ?? await this.components.network.dial(peer, { signal })
  }

  /** Fetch the blob from one peer into the store, or throw saying what went wrong with that peer. */
  private async fetchFrom (peer: PeerId, hash: string, maxBytes: number, pin: boolean, outer: AbortSignal, used: { relayed?: boolean } = {}): Promise<FetchResult> {
    const whole = AbortSignal.timeout(this.fetchTimeoutMs)
    const signal = AbortSignal.any([outer, whole])
    let stream: Stream
    let connection: Connection
    try {
      const opening = AbortSignal.any([signal, AbortSignal.timeout(this.headerTimeoutMs)])
      connection = await this.connectionTo(peer, opening)
      used.relayed = connection.limits !== undefined
      stream = await connection.newStream(PROTOCOL, { signal: opening, runOnLimitedConnection: true })
    } catch (err) {
      if (outer.aborted) throw err
      if (whole.aborted) throw new DeadlineError(`did not deliver the blob within ${this.fetchTimeoutMs} ms`)
      throw new BuildhausError(`could not open a blob stream (${describeError(err)})`)
    }
    // A paused stream must be able to hold what the sender's window still lets it send.
    stream.maxReadBufferLength = PAUSED_READ_BUFFER_BYTES
    const abort = (err: Error): void => { stream.abort(err) }
    const onAbort = (): void => {
      abort(whole.aborted ? new DeadlineError(`did not deliver the blob within ${this.fetchTimeoutMs} ms`) : asError(signal.reason))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    const frames = lp.decode(boundedSource(stream, { highWaterBytes: READ_HIGH_WATER_BYTES, lowWaterBytes: READ_LOW_WATER_BYTES }), { maxDataLength: MAX_DATA_FRAME_BYTES })[Symbol.asyncIterator]()
    try {
      stream.send(lp.encode.single(encodeRequest({ hash })))
      // Half-close: the request is all we have to say.
      await stream.close({ signal })
      const header = await this.readHeader(frames, abort)
      if (header.status === 'missing') throw new BlobNotFoundError(hash, 'does not have it')
      if (header.status === 'busy') throw new PeerBusyError('is busy serving others')
      if (header.size > maxBytes) throw new BlobTooLargeError(`announced ${header.size} bytes, more than the ${maxBytes} allowed; nothing was read`)
      if (!pin && header.size > this.components.store.maxBytes) throw new BlobTooLargeError(`announced ${header.size} bytes, more than the whole blob store holds (${this.components.store.maxBytes}); nothing was read`)
      const left = connection.limits?.bytes
      if (left !== undefined && BigInt(Math.ceil(header.size * (1 + RELAY_OVERHEAD_RATIO)) + RELAY_OVERHEAD_BYTES) > left) {
        throw new BlobOverRelayLimitError(`announced ${header.size} bytes, more than the relayed connection may still carry (${left} bytes); it needs a direct connection; nothing was read`)
      }
      const stored = await this.components.store.put(this.payload(frames, header.size, abort), { expected: hash, maxBytes: header.size, pin })
      if (used.relayed === true) this.counters.fetchedRelayed++
      return { ...stored, from: peer.toString() }
    } catch (err) {
      abort(asError(err))
      if (whole.aborted && !outer.aborted) throw new DeadlineError(`did not deliver the blob within ${this.fetchTimeoutMs} ms`)
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
      await frames.return?.()
    }
  }

  private async readHeader (frames: AsyncIterator<Uint8ArrayList>, abort: (err: Error) => void): Promise<BlobResponseHeader> {
    const first = await nextWithin(frames, this.headerTimeoutMs, 'response header', abort)
    if (first.done === true) throw new InvalidInputError('closed the stream without answering')
    return decodeHeader(first.value.subarray())
  }

  /** The data frames after a `found` header: exactly `size` bytes, each frame within the chunk deadline. */
  private async * payload (frames: AsyncIterator<Uint8ArrayList>, size: number, abort: (err: Error) => void): AsyncGenerator<Uint8Array> {
    let received = 0
    while (received < size) {
      const next = await nextWithin(frames, this.chunkTimeoutMs, 'data', abort)
      if (next.done === true) throw new InvalidInputError(`ended the stream after ${received} of the ${size} bytes it announced`)
      received += next.value.byteLength
      if (received > size) throw new InvalidInputError(`sent more than the ${size} bytes it announced`)
      yield * next.value
    }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const signal = AbortSignal.any([this.lifetime.signal, AbortSignal.timeout(this.serveTimeoutMs)])
    const abort = (err: Error): void => { stream.abort(err) }
    const onAbort = (): void => { abort(asError(signal.reason)) }
    signal.addEventListener('abort', onAbort, { once: true })
    let opened: OpenedBlob | undefined
    let counted = false
    try {
      const hash = await this.readRequest(stream, signal)

      if (this.serving >= this.maxConcurrentServes) {
        this.counters.answeredBusy++
        await this.answer(stream, { status: 'busy' }, signal)
        return
      }
      this.serving++
      counted = true
      try {
        opened = await this.components.store.openRead(hash)
      } catch (err) {
        if (!(err instanceof BlobNotFoundError)) throw err
        this.counters.answeredMissing++
        await this.answer(stream, { status: 'missing' }, signal)
        return
      }
      log('serving %s (%d bytes) to %p', hash, opened.size, peer)
      await sendWithBackpressure(stream, lp.encode.single(encodeHeader({ status: 'found', size: opened.size })), this.sendOptions(signal))
      let sent = 0
      for await (const chunk of opened.stream as AsyncIterable<Buffer>) {
        for (let offset = 0; offset < chunk.byteLength; offset += DATA_FRAME_BYTES) {
          const piece = chunk.subarray(offset, offset + DATA_FRAME_BYTES)
          await sendWithBackpressure(stream, lp.encode.single(piece), this.sendOptions(signal))
          sent += piece.byteLength
        }
      }
      // Flushing what is queued (≤ the write high-water mark) is bounded like any other wait on the peer.
      await stream.close({ signal: AbortSignal.any([signal, AbortSignal.timeout(this.chunkTimeoutMs)]) })
      this.counters.served++
      this.counters.servedBytes += sent
      if (connection.limits !== undefined) this.counters.servedRelayed++
    } catch (err) {
      log('serving %p failed: %s', peer, describeError(err))
      abort(asError(err))
    } finally {
      signal.removeEventListener('abort', onAbort)
      opened?.stream.destroy()
      if (counted) this.serving--
    }
  }

  /**
   * The one request frame, with @libp2p/utils' lpStream: at most
   * MAX_REQUEST_BYTES of frame (a longer length prefix is refused before
   * anything is read), at most four times that buffered (more aborts the
   * stream), within requestTimeoutMs. A client says nothing after it.
   */
  private async readRequest (stream: Stream, signal: AbortSignal): Promise<string> {
    const reader = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES, maxBufferSize: MAX_REQUEST_BYTES * 4 })
    const deadline = AbortSignal.timeout(this.requestTimeoutMs)
    try {
      const frame = await reader.read({ signal: AbortSignal.any([signal, deadline]) })
      return decodeRequest(frame.subarray()).hash
    } catch (err) {
      if (deadline.aborted && !signal.aborted) throw new DeadlineError(`no request within ${this.requestTimeoutMs} ms`)
      if (err instanceof UnexpectedEOFError) throw new InvalidInputError('the stream closed before a whole request arrived')
      throw err
    } finally {
      reader.unwrap()
    }
  }

  private sendOptions (signal: AbortSignal): { highWaterBytes: number, ms: number, signal: AbortSignal } {
    return { highWaterBytes: WRITE_HIGH_WATER_BYTES, ms: this.chunkTimeoutMs, signal }
  }

  private async answer (stream: Stream, header: BlobResponseHeader, signal: AbortSignal): Promise<void> {
    await sendWithBackpressure(stream, lp.encode.single(encodeHeader(header)), this.sendOptions(signal))
    await stream.close({ signal: AbortSignal.any([signal, AbortSignal.timeout(this.chunkTimeoutMs)]) })
  }
}

/** A failure of the path rather than an answer from the peer (missing, busy, too large, wrong bytes). */
function isTransportFailure (err: unknown): boolean {
  return !(err instanceof BlobNotFoundError || err instanceof PeerBusyError || err instanceof BlobTooLargeError ||
    err instanceof BlobOverRelayLimitError || err instanceof BlobHashMismatchError || err instanceof InvalidInputError)
}

function clampFanOut (value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) return 1
  return Math.min(value, MAX_FAN_OUT)
}

function asError (value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts (the work itself goes on). */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await promise
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
