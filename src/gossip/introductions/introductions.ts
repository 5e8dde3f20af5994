import type { AbortOptions, Connection, PeerId, Stream, StreamHandlerOptions } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import * as lp from 'it-length-prefixed'
import { z } from 'zod'
import { DeadlineError, describeError, InvalidInputError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import { boundedSource } from '../../util/stream-source.js'
import type { AddressBook } from '../address-book.js'
import {
  ASK_INTERVAL_MS, EXCHANGE_TIMEOUT_MS, MAX_ADDRESS_LENGTH, MAX_ADDRESSES_EACH, MAX_ASKERS_REMEMBERED, MAX_INTRODUCED, MAX_REQUEST_BYTES,
  MAX_RESPONSE_BYTES, PROTOCOL, SERVE_INTERVAL_MS
} from './constants.js'

const log = componentLogger('gossip:introductions')

/** What introductions need of libp2p (a libp2p node satisfies it). */
export interface IntroductionsNetwork {
  handle (protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: StreamHandlerOptions): Promise<void>
  unhandle (protocol: string): Promise<void>
  dialProtocol (peer: PeerId, protocol: string, options?: AbortOptions): Promise<Stream>
  getConnections (peerId?: PeerId): Connection[]
}

export interface IntroductionsComponents {
  network: IntroductionsNetwork
  /** Who may introduce (isIntroducer), what this node can vouch for (introductions), where introductions go (introduced). */
  book: Pick<AddressBook, 'isIntroducer' | 'introductions' | 'introduced'>
}

export interface IntroductionsInit {
  askIntervalMs?: number
  serveIntervalMs?: number
  timeoutMs?: number
  now?: () => number
}

export interface IntroductionsStats {
  asked: number
  answered: number
  /** Addresses the book took from answers. */
  learned: number
  /** Questions refused (asked too often) and exchanges that failed. */
  refused: number
  failed: number
}

const answerSchema = z.strictObject({
  v: z.literal(1),
  peers: z.array(z.strictObject({
    id: z.string().max(128).refine((id) => { try { peerIdFromString(id); return true } catch { return false } }, 'expected a peer id'),
    addrs: z.array(z.string().max(MAX_ADDRESS_LENGTH)).max(MAX_ADDRESSES_EACH)
  })).max(MAX_INTRODUCED)
})

/**
 * Both sides of `/buildhaus/introductions/1.0.0`. Serving: anyone may ask,
 * at most once per `serveIntervalMs`; the answer is what the address book
 * can vouch for (peers connected now, with addresses proved or observed on
 * those connections). Asking: only peers the book trusts as introducers are
 * asked, each at most once per `askIntervalMs`, and only they are believed.
 */
export class Introductions {
  private readonly network: IntroductionsNetwork
  private readonly book: IntroductionsComponents['book']
  private readonly askIntervalMs: number
  private readonly serveIntervalMs: number
  private readonly timeoutMs: number
  private readonly now: () => number
  private readonly lastAsked = new Map<string, number>()
  private readonly lastServed = new Map<string, number>()
  private readonly counters: IntroductionsStats = { asked: 0, answered: 0, learned: 0, refused: 0, failed: 0 }
  private running = false

  constructor (components: IntroductionsComponents, init: IntroductionsInit = {}) {
    this.network = components.network
    this.book = components.book
    this.askIntervalMs = init.askIntervalMs ?? ASK_INTERVAL_MS
    this.serveIntervalMs = init.serveIntervalMs ?? SERVE_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? EXCHANGE_TIMEOUT_MS
    this.now = init.now ?? Date.now
  }

  async start (): Promise<void> {
    if (this.running) return
    await this.network.handle(PROTOCOL, (stream, connection) => { void this.serve(stream, connection) }, { maxInboundStreams: 4, maxOutboundStreams: 4 })
    this.running = true
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.network.unhandle(PROTOCOL)
  }

  get stats (): Readonly<IntroductionsStats> {
    return { ...this.counters }
  }

  /**
   * Ask every connected introducer not asked within the interval whom it can
   * introduce us to (in the background). The keeper calls this while the
   * node has fewer peers than it wants.
   */
  ask (): void {
    if (!this.running) return
    const now = this.now()
    const seen = new Set<string>()
    for (const connection of this.network.getConnections()) {
      const id = connection.remotePeer.toString()
      if (seen.has(id)) continue
      seen.add(id)
      if (!this.book.isIntroducer(connection.remotePeer)) continue
      if (now - (this.lastAsked.get(id) ?? -Infinity) < this.askIntervalMs) continue
      this.lastAsked.delete(id)
      this.lastAsked.set(id, now)
      trim(this.lastAsked)
      void this.askOne(connection).catch((err: unknown) => {
        this.counters.failed++
        log('asking %s for introductions failed: %s', id, describeError(err))
      })
    }
  }

  private async askOne (connection: Connection): Promise<void> {
    this.counters.asked++
    const signal = AbortSignal.timeout(this.timeoutMs)
    const stream = await this.network.dialProtocol(connection.remotePeer, PROTOCOL, { signal })
    try {
      stream.send(lp.encode.single(Buffer.from(JSON.stringify({ v: 1 }))))
      const bytes = await readOneFrame(stream, MAX_RESPONSE_BYTES, signal)
      let answer: z.infer<typeof answerSchema>
      try {
        answer = answerSchema.parse(JSON.parse(Buffer.from(bytes).toString('utf8')))
      } catch (err) {
        throw new InvalidInputError(`a malformed introduction (${describeError(err).slice(0, 200)})`)
      }
      // The connection the answer came over: its scope bounds what may be introduced.
      const via = this.network.getConnections(connection.remotePeer)[0] ?? connection
      const learned = this.book.introduced(via, answer.peers)
      this.counters.learned += learned
      log('%p introduced %d peers (%d new addresses)', connection.remotePeer, answer.peers.length, learned)
    } finally {
      await stream.close().catch(() => { stream.abort(new Error('closing failed')) })
    }
  }

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const id = connection.remotePeer.toString()
    const now = this.now()
    if (now - (this.lastServed.get(id) ?? -Infinity) < this.serveIntervalMs) {
      this.counters.refused++
      stream.abort(new InvalidInputError('asked for introductions too often'))
      return
    }
    this.lastServed.delete(id)
    this.lastServed.set(id, now)
    trim(this.lastServed)
    try {
      const signal = AbortSignal.timeout(this.timeoutMs)
      const request = await readOneFrame(stream, MAX_REQUEST_BYTES, signal)
      const parsed = JSON.parse(Buffer.from(request).toString('utf8')) as unknown
      if (typeof parsed !== 'object' || parsed === null || (parsed as { v?: unknown }).v !== 1) throw new InvalidInputError('not an introductions request')
      const peers = this.book.introductions(MAX_INTRODUCED, connection.remotePeer).map((p) => ({
        id: p.id,
        addrs: p.addrs.filter((a) => a.length <= MAX_ADDRESS_LENGTH).slice(0, MAX_ADDRESSES_EACH)
      }))
      stream.send(lp.encode.single(Buffer.from(JSON.stringify({ v: 1, peers }))))
      this.counters.answered++
      await stream.close()
    } catch (err) {
      this.counters.failed++
      log('answering %s failed: %s', id, describeError(err))
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The first length-prefixed frame of a stream, at most `maxBytes`, before `signal` aborts. */
async function readOneFrame (stream: Stream, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  const frames = lp.decode(boundedSource(stream, { highWaterBytes: maxBytes * 2, signal }), { maxDataLength: maxBytes })[Symbol.asyncIterator]()
  const onAbort = (): void => { stream.abort(new DeadlineError('no answer in time')) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const first = await frames.next()
    if (first.done === true) throw new InvalidInputError('the stream ended without a message')
    return first.value.subarray()
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Keep a per-peer time map bounded: past the bound, the oldest entries go. */
function trim (map: Map<string, number>): void {
  while (map.size > MAX_ASKERS_REMEMBERED) {
    const oldest = map.keys().next().value
    if (oldest === undefined) break
    map.delete(oldest)
  }
}
