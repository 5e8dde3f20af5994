import * as lp from 'it-length-prefixed'
import type { AbortOptions, Connection, PeerId, Stream, StreamHandlerOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { DeadlineError, EnvironmentError, InvalidInputError, describeError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { boundedSource } from '../util/stream-source.js'
import {
  BURST_CHARS, HEADER_TIMEOUT_MS, LIVE_LOG_PROTOCOL, MAX_FOLLOW_CHARS, MAX_FOLLOWS_PER_PEER, MAX_FRAME_BYTES, MAX_FRAME_CHARS,
  MAX_REQUEST_BYTES, MAX_SERVED_FOLLOWS, MAX_STREAMS_PER_CONNECTION, PING_INTERVAL_MS, RATE_CHARS_PER_S, REQUEST_TIMEOUT_MS,
  SILENCE_TIMEOUT_MS, WRITE_HIGH_WATER_BYTES
} from './constants.js'
import { liveKey, type LiveChunk, type LiveLogHub } from './hub.js'
import { decodeFrame, decodeHeader, decodeRequest, encode, type FollowFrame } from './messages.js'

const log = componentLogger('livelog')

/** What the service needs of a libp2p node (a libp2p node satisfies it as is). */
export interface LiveLogNetwork {
  handle (protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: StreamHandlerOptions): Promise<void>
  unhandle (protocol: string): Promise<void>
  dialProtocol (peer: PeerId, protocol: string, options?: AbortOptions): Promise<Stream>
}

export interface LiveLogInit {
  /** Bounds a follower applies to one builder's log (see constants.ts); tests lower them. */
  rateCharsPerS?: number
  burstChars?: number
  maxFollowChars?: number
  silenceTimeoutMs?: number
  pingIntervalMs?: number
  maxServedFollows?: number
  maxFollowsPerPeer?: number
}

export interface FollowOptions {
  /** The first character wanted. */
  offset?: number
  signal: AbortSignal
}

/**
 * How a follow ended: the run ended (`ended`), the builder does not run this
 * slot (`unknown`) or serves too many followers (`busy`), it broke a bound
 * and was cut off (`cut`), or the stream failed (`lost`).
 */
export type FollowOutcome = { outcome: 'ended' | 'unknown' | 'busy' } | { outcome: 'cut' | 'lost', reason: string }

export interface LiveLogStats {
  served: number
  servedNow: number
  answeredBusy: number
  answeredUnknown: number
  followed: number
  cut: number
}

/**
 * Serves this node's running builds' output over LIVE_LOG_PROTOCOL, and
 * follows other builders' runs into the local hub. A builder serves only its
 * own slots (`<job>/<platform>/<its key>` in the hub); a follower writes what
 * it reads under the key of the peer it dialled, which Noise authenticated:
 * nobody can put text in another builder's log.
 */
export class LiveLogService {
  private readonly network: LiveLogNetwork
  private readonly hub: LiveLogHub
  private readonly self: string
  private readonly init: Required<LiveLogInit>
  private readonly servedPerPeer = new Map<string, number>()
  private served = 0
  private running = false
  private lifetime = new AbortController()
  private readonly counters: LiveLogStats = { served: 0, servedNow: 0, answeredBusy: 0, answeredUnknown: 0, followed: 0, cut: 0 }

  constructor (components: { network: LiveLogNetwork, hub: LiveLogHub, self: string }, init: LiveLogInit = {}) {
    this.network = components.network
    this.hub = components.hub
    this.self = components.self
    this.init = {
      rateCharsPerS: init.rateCharsPerS ?? RATE_CHARS_PER_S,
      burstChars: init.burstChars ?? BURST_CHARS,
      maxFollowChars: init.maxFollowChars ?? MAX_FOLLOW_CHARS,
      silenceTimeoutMs: init.silenceTimeoutMs ?? SILENCE_TIMEOUT_MS,
      pingIntervalMs: init.pingIntervalMs ?? PING_INTERVAL_MS,
      maxServedFollows: init.maxServedFollows ?? MAX_SERVED_FOLLOWS,
      maxFollowsPerPeer: init.maxFollowsPerPeer ?? MAX_FOLLOWS_PER_PEER
    }
  }

  async start (): Promise<void> {
    if (this.running) return
    this.lifetime = new AbortController()
    await this.network.handle(LIVE_LOG_PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, {
      maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
      maxOutboundStreams: MAX_STREAMS_PER_CONNECTION
    })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.lifetime.abort(new EnvironmentError('the live log service stopped'))
    await this.network.unhandle(LIVE_LOG_PROTOCOL).catch(() => {})
  }

  stats (): LiveLogStats {
    return { ...this.counters, servedNow: this.served }
  }

  /**
   * Follow `builder`'s run of a job platform into the hub (key
   * `<job>/<platform>/<builder>`) until it ends, a bound is broken, or
   * `signal` aborts. Never throws for the peer's faults: they are outcomes.
   */
  async follow (peer: PeerId, builder: string, job: string, platform: string, options: FollowOptions): Promise<FollowOutcome> {
    if (!this.running) throw new EnvironmentError('the live log service is not running')
    const key = liveKey(job, platform, builder)
    const signal = AbortSignal.any([options.signal, this.lifetime.signal])
    let stream: Stream
    try {
      stream = await this.network.dialProtocol(peer, LIVE_LOG_PROTOCOL, { signal: AbortSignal.any([signal, AbortSignal.timeout(HEADER_TIMEOUT_MS)]) })
    } catch (err) {
      signal.throwIfAborted()
      return { outcome: 'lost', reason: `could not open a live log stream (${describeError(err)})` }
    }
    const onAbort = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
    signal.addEventListener('abort', onAbort, { once: true })
    const frames = lp.decode(boundedSource(stream, { highWaterBytes: 4 * MAX_FRAME_BYTES }), { maxDataLength: MAX_FRAME_BYTES })[Symbol.asyncIterator]()
    try {
      stream.send(lp.encode.single(encode({ job, platform, offset: options.offset ?? 0 })))
      await stream.close({ signal })
      const first = await next(frames, HEADER_TIMEOUT_MS, 'header', stream)
      if (first.done === true) return { outcome: 'lost', reason: 'the builder closed the stream without answering' }
      const header = decodeHeader(first.value.subarray())
      if (header.status !== 'live') return { outcome: header.status }
      this.counters.followed++
      if (!this.hub.has(key)) this.hub.open(key)
      const bucket = new TokenBucket(this.init.rateCharsPerS, this.init.burstChars)
      let expected = options.offset ?? 0
      let total = 0
      while (true) {
        const item = await next(frames, this.init.silenceTimeoutMs, 'live log frame', stream)
        if (item.done === true) return { outcome: 'lost', reason: 'the builder closed the stream before the run ended' }
        const frame: FollowFrame = decodeFrame(item.value.subarray())
        if ('ping' in frame) continue
        if ('end' in frame) {
          this.hub.end(key)
          return { outcome: 'ended' }
        }
        if (frame.o < expected) {
          // Already held (a reconnect): keep only what is new.
          if (frame.o + frame.t.length <= expected) continue
          frame.t = frame.t.slice(expected - frame.o)
          frame.o = expected
        } else if (frame.o > expected) {
          this.hub.append(key, `\n[… ${frame.o - expected} characters not received …]\n`)
        }
        total += frame.t.length
        if (total > this.init.maxFollowChars) return this.cut(key, stream, `the live log passed ${this.init.maxFollowChars} characters; the whole log comes with the result`)
        if (!bucket.take(frame.t.length)) return this.cut(key, stream, `the builder sent more than ${this.init.rateCharsPerS} characters a second; the whole log comes with the result`)
        this.hub.append(key, frame.t)
        expected = frame.o + frame.t.length
      }
    } catch (err) {
      signal.throwIfAborted()
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      return { outcome: 'lost', reason: describeError(err) }
    } finally {
      signal.removeEventListener('abort', onAbort)
      await frames.return?.()
    }
  }

  private cut (key: string, stream: Stream, reason: string): FollowOutcome {
    this.counters.cut++
    stream.abort(new InvalidInputError(reason))
    this.hub.append(key, `\n[buildhaus: live log stopped: ${reason}]\n`)
    return { outcome: 'cut', reason }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const signal = this.lifetime.signal
    const onAbort = (): void => { stream.abort(new EnvironmentError('the live log service stopped')) }
    signal.addEventListener('abort', onAbort, { once: true })
    let counted = false
    let unsubscribe: (() => void) | undefined
    try {
      const frames = lp.decode(boundedSource(stream, { highWaterBytes: MAX_REQUEST_BYTES * 4, lowWaterBytes: 0 }), { maxDataLength: MAX_REQUEST_BYTES })[Symbol.asyncIterator]()
      let request
      try {
        const first = await next(frames, REQUEST_TIMEOUT_MS, 'request', stream)
        if (first.done === true) throw new InvalidInputError('the stream closed before a request arrived')
        request = decodeRequest(first.value.subarray())
      } finally {
        await frames.return?.()
      }
      const key = liveKey(request.job, request.platform, this.self)
      if (this.served >= this.init.maxServedFollows || (this.servedPerPeer.get(peer) ?? 0) >= this.init.maxFollowsPerPeer) {
        this.counters.answeredBusy++
        await this.sendFrame(stream, encode({ status: 'busy' }))
        await stream.close({ signal: AbortSignal.timeout(HEADER_TIMEOUT_MS) })
        return
      }
      if (!this.hub.has(key)) {
        this.counters.answeredUnknown++
        await this.sendFrame(stream, encode({ status: 'unknown' }))
        await stream.close({ signal: AbortSignal.timeout(HEADER_TIMEOUT_MS) })
        return
      }
      counted = true
      this.served++
      this.servedPerPeer.set(peer, (this.servedPerPeer.get(peer) ?? 0) + 1)
      this.counters.served++
      // Subscribe before reading the backlog, then send each character once, in order.
      const queue: Array<LiveChunk | 'end'> = []
      let wake: (() => void) | undefined
      const offChunk = this.hub.on('chunk', (event) => { if (event.detail.key === key) { queue.push(event.detail); wake?.() } })
      const offEnd = this.hub.on('end', (event) => { if (event.detail.key === key) { queue.push('end'); wake?.() } })
      // A follower that goes away (reset, close) wakes the loop at once, not at the next ping.
      const onClose = (): void => { wake?.() }
      stream.addEventListener('close', onClose)
      unsubscribe = () => { offChunk(); offEnd(); stream.removeEventListener('close', onClose) }
      const snapshot = this.hub.snapshot(key)!
      await this.sendFrame(stream, encode({ status: 'live' }))
      let sent = Math.max(request.offset, snapshot.offset)
      if (sent < snapshot.offset + snapshot.text.length) {
        await this.sendText(stream, sent, snapshot.text.slice(sent - snapshot.offset))
        sent = snapshot.offset + snapshot.text.length
      }
      if (snapshot.ended) queue.push('end')
      let lastSent = Date.now()
      while (!signal.aborted && stream.status === 'open') {
        const item = queue.shift()
        if (item === 'end') {
          await this.sendFrame(stream, encode({ end: true }))
          await stream.close({ signal: AbortSignal.timeout(HEADER_TIMEOUT_MS) })
          return
        }
        if (item !== undefined) {
          const end = item.offset + item.text.length
          if (end > sent) {
            await this.sendText(stream, Math.max(sent, item.offset), item.text.slice(Math.max(0, sent - item.offset)))
            sent = end
            lastSent = Date.now()
          }
          continue
        }
        const wait = this.init.pingIntervalMs - (Date.now() - lastSent)
        if (wait <= 0) {
          await this.sendFrame(stream, encode({ ping: true }))
          lastSent = Date.now()
          continue
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait)
          wake = () => { clearTimeout(timer); resolve() }
        })
        wake = undefined
      }
    } catch (err) {
      log('serving a live log to %s failed: %s', peer, describeError(err))
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      unsubscribe?.()
      signal.removeEventListener('abort', onAbort)
      if (counted) {
        this.served--
        const left = (this.servedPerPeer.get(peer) ?? 1) - 1
        if (left <= 0) this.servedPerPeer.delete(peer)
        else this.servedPerPeer.set(peer, left)
      }
    }
  }

  private async sendText (stream: Stream, offset: number, text: string): Promise<void> {
    for (let i = 0; i < text.length; i += MAX_FRAME_CHARS) {
      await this.sendFrame(stream, encode({ o: offset + i, t: text.slice(i, i + MAX_FRAME_CHARS) }))
    }
  }

  /** Send one frame, waiting while the follower has more than WRITE_HIGH_WATER_BYTES unread (a follower that reads nothing is dropped). */
  private async sendFrame (stream: Stream, bytes: Uint8Array): Promise<void> {
    stream.send(lp.encode.single(bytes))
    const deadline = Date.now() + this.init.silenceTimeoutMs
    while (stream.writeBufferLength > WRITE_HIGH_WATER_BYTES) {
      if (Date.now() > deadline || stream.status !== 'open') throw new DeadlineError('the follower read nothing for too long')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 1_000)
        function done (): void { clearTimeout(timer); stream.removeEventListener('drain', done); stream.removeEventListener('close', done); resolve() }
        stream.addEventListener('drain', done)
        stream.addEventListener('close', done)
      })
    }
  }
}

/** Characters allowed now: refills at `rate` a second up to `burst`. */
class TokenBucket {
  private tokens: number
  private last = Date.now()
  constructor (private readonly rate: number, private readonly burst: number) {
    this.tokens = burst
  }

  take (n: number): boolean {
    const now = Date.now()
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.rate / 1000)
    this.last = now
    if (n > this.tokens) return false
    this.tokens -= n
    return true
  }
}

async function next (frames: AsyncIterator<Uint8ArrayList>, ms: number, what: string, stream: Stream): Promise<IteratorResult<Uint8ArrayList>> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new DeadlineError(`no ${what} within ${ms} ms`)
      stream.abort(err)
      reject(err)
    }, ms)
  })
  try {
    return await Promise.race([frames.next(), deadline])
  } finally {
    clearTimeout(timer)
  }
}

