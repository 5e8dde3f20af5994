import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { describeError } from '../../util/errors.js'
import { ReadOnlyLedgerError } from '../errors.js'
import { componentLogger } from '../../util/logger.js'
import type { ChainHead, LedgerStore } from '../store.js'
import type { Admission } from '../admission/index.js'
import {
  DIAL_TIMEOUT_MS, FRAME_TIMEOUT_MS, MAX_BYTES_PER_SESSION, MAX_CONCURRENT_SESSIONS, MAX_ENTRIES_PER_SESSION, MAX_FOLLOW_UP_SESSIONS, MAX_HEADS, MAX_INBOUND_SESSIONS_PER_PEER,
  SESSION_TIMEOUT_MS, SYNC_INTERVAL_MS, SYNC_PEERS_PER_ROUND, SYNC_PROTOCOL, SYNC_PROTOCOL_DIGEST
} from './constants.js'
import type { CatchUpResult, LedgerSyncComponents, LedgerSyncInit, LedgerSyncStats, LearnOwnChainResult, SyncNetwork } from './index.js'
import { runSyncSession, type SessionResult } from './session.js'

const log = componentLogger('ledger:sync')

interface Settings {
  intervalMs: number
  peersPerRound: number
  frameTimeoutMs: number
  sessionTimeoutMs: number
  dialTimeoutMs: number
  maxEntriesPerSession: number
  maxBytesPerSession: number
  maxConcurrentSessions: number
  maxHeads: number
}

/**
 * Anti-entropy for the ledger: a sync session with each new connection, and
 * every interval (jittered) with a few connected peers chosen at random
 * (SYNC_PEERS_PER_ROUND); answer peers' sessions; and, at start, learn this
 * node's own chain from the mesh before it may append.
 */
export class LedgerSync {
  private readonly network: SyncNetwork
  private readonly store: LedgerStore
  private readonly settings: Settings
  private readonly admission: Admission | undefined
  private readonly active = new Map<string, number>()
  /** Sessions each peer has open to us (MAX_INBOUND_SESSIONS_PER_PEER), by peer id. */
  private readonly inbound = new Map<string, number>()
  private readonly outbound = new Map<string, Promise<SessionResult | undefined>>()
  /** Every session running, inbound or outbound, so stop() can wait for them to wind down. */
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly counters: LedgerSyncStats = { sessions: 0, failed: 0, received: 0, sent: 0, forksLearnt: 0, inSync: 0, headsSent: 0 }
  private sessions = 0
  private controller = new AbortController()
  private timer: NodeJS.Timeout | undefined
  private isRunning = false

  constructor (components: LedgerSyncComponents, init: LedgerSyncInit = {}) {
    this.network = components.network
    this.store = components.store
    this.admission = components.admission
    this.settings = {
      intervalMs: init.intervalMs ?? SYNC_INTERVAL_MS,
      peersPerRound: init.peersPerRound ?? SYNC_PEERS_PER_ROUND,
      frameTimeoutMs: init.frameTimeoutMs ?? FRAME_TIMEOUT_MS,
      sessionTimeoutMs: init.sessionTimeoutMs ?? SESSION_TIMEOUT_MS,
      dialTimeoutMs: init.dialTimeoutMs ?? DIAL_TIMEOUT_MS,
      maxEntriesPerSession: init.maxEntriesPerSession ?? MAX_ENTRIES_PER_SESSION,
      maxBytesPerSession: init.maxBytesPerSession ?? MAX_BYTES_PER_SESSION,
      maxConcurrentSessions: init.maxConcurrentSessions ?? MAX_CONCURRENT_SESSIONS,
      maxHeads: init.maxHeads ?? MAX_HEADS
    }
  }

  get running (): boolean {
    return this.isRunning
  }

  async start (): Promise<void> {
    if (this.isRunning) return
    this.isRunning = true
    this.controller = new AbortController()
    // libp2p's stream limits are per protocol; onStream bounds a peer's sessions over both (MAX_INBOUND_SESSIONS_PER_PEER).
    for (const protocol of [SYNC_PROTOCOL_DIGEST, SYNC_PROTOCOL]) await this.network.handle(protocol, this.onStream, { maxInboundStreams: 2, maxOutboundStreams: 2 })
    this.network.addEventListener('peer:connect', this.onConnect)
    this.schedule()
  }

  async stop (): Promise<void> {
    if (!this.isRunning) return
    this.isRunning = false
    clearTimeout(this.timer)
    this.network.removeEventListener('peer:connect', this.onConnect)
    this.controller.abort(new Error('the ledger sync is stopping'))
    for (const protocol of [SYNC_PROTOCOL_DIGEST, SYNC_PROTOCOL]) await this.network.unhandle(protocol).catch(() => {})
    await Promise.allSettled([...this.outbound.values(), ...this.inflight])
  }

  stats (): LedgerSyncStats {
    return { ...this.counters }
  }

  /**
   * Run sessions with `peer` until neither side has more to send (or the
   * follow-up cap). Joins a session already running with that peer. Resolves
   * undefined if it could not run (stopped, too busy, peer unreachable).
   */
  async syncWith (peer: PeerId, options: { want?: string[], signal?: AbortSignal } = {}): Promise<SessionResult | undefined> {
    const key = peer.toString()
    const running = this.outbound.get(key)
    if (running !== undefined && options.want === undefined) return await running
    const work = this.syncRounds(peer, options)
    if (options.want === undefined) {
      this.outbound.set(key, work)
      void work.finally(() => { if (this.outbound.get(key) === work) this.outbound.delete(key) })
    }
    return await work
  }

  private async syncRounds (peer: PeerId, options: { want?: string[], signal?: AbortSignal }): Promise<SessionResult | undefined> {
    const total: SessionResult = { received: 0, sent: 0, forksLearnt: 0, forksSent: 0, more: false, inSync: false, headsSent: 0, bytesSent: 0 }
    for (let round = 0; round < MAX_FOLLOW_UP_SESSIONS; round++) {
      const result = await this.dialSession(peer, options)
      if (result === undefined) return round === 0 ? undefined : total
      total.received += result.received
      total.sent += result.sent
      total.forksLearnt += result.forksLearnt
      total.headsSent += result.headsSent
      total.bytesSent += result.bytesSent
      total.inSync = result.inSync
      total.forksSent += result.forksSent
      total.more = result.more
      if (!result.more) break
    }
    return total
  }

  private async dialSession (peer: PeerId, options: { want?: string[], signal?: AbortSignal }): Promise<SessionResult | undefined> {
    if (!this.isRunning || this.sessions >= this.settings.maxConcurrentSessions) return undefined
    const signals = [this.controller.signal, AbortSignal.timeout(this.settings.dialTimeoutMs)]
    if (options.signal !== undefined) signals.push(options.signal)
    let stream: Stream
    this.enter(peer)
    try {
      try {
        // The digest protocol first; a node that knows only 1.0.0 answers that.
        stream = await this.network.dialProtocol(peer, [SYNC_PROTOCOL_DIGEST, SYNC_PROTOCOL], { signal: AbortSignal.any(signals) })
      } catch (err) {
        log('cannot open a sync stream to %p: %s', peer, describeError(err))
        return undefined
      }
      return await this.run(stream, peer, 'dialer', options)
    } finally {
      this.leave(peer)
    }
  }

  private readonly onStream = (stream: Stream, connection: Connection): void => {
    const peer = connection.remotePeer
    const key = peer.toString()
    const fromPeer = this.inbound.get(key) ?? 0
    if (!this.isRunning || this.sessions >= this.settings.maxConcurrentSessions || fromPeer >= MAX_INBOUND_SESSIONS_PER_PEER) {
      log('refusing a sync session from %p: %d sessions running, %d of them from it', peer, this.sessions, fromPeer)
      stream.abort(new Error('too many sync sessions; try again later'))
      return
    }
    this.inbound.set(key, fromPeer + 1)
    this.enter(peer)
    void this.run(stream, peer, 'listener', {}).finally(() => {
      this.leave(peer)
      const left = (this.inbound.get(key) ?? 1) - 1
      if (left <= 0) this.inbound.delete(key)
      else this.inbound.set(key, left)
    })
  }

  private async run (stream: Stream, peer: PeerId, role: 'dialer' | 'listener', options: { want?: string[], signal?: AbortSignal }): Promise<SessionResult | undefined> {
    const signals = [this.controller.signal]
    if (options.signal !== undefined) signals.push(options.signal)
    const session = this.runSession(stream, peer, role, options.want, AbortSignal.any(signals))
    this.inflight.add(session)
    try {
      return await session
    } finally {
      this.inflight.delete(session)
    }
  }

  private async runSession (stream: Stream, peer: PeerId, role: 'dialer' | 'listener', want: string[] | undefined, signal: AbortSignal): Promise<SessionResult | undefined> {
    try {
      const result = await runSyncSession(stream, {
        store: this.store,
        role,
        ...(want !== undefined ? { want } : {}),
        digests: stream.protocol === SYNC_PROTOCOL_DIGEST,
        frameTimeoutMs: this.settings.frameTimeoutMs,
        sessionTimeoutMs: this.settings.sessionTimeoutMs,
        maxEntriesPerSession: this.settings.maxEntriesPerSession,
        maxBytesPerSession: this.settings.maxBytesPerSession,
        maxHeads: this.settings.maxHeads,
        ...(this.admission !== undefined ? { admission: this.admission } : {}),
        signal,
        log
      })
      this.counters.sessions++
      this.counters.received += result.received
      this.counters.sent += result.sent
      this.counters.forksLearnt += result.forksLearnt
      if (result.inSync) this.counters.inSync++
      this.counters.headsSent += result.headsSent
      log('sync %s %p: received %d, sent %d, forks learnt %d%s', role, peer, result.received, result.sent, result.forksLearnt, result.more ? ', more to come' : '')
      return result
    } catch (err) {
      this.counters.failed++
      this.counters.lastError = `${peer.toString()}: ${describeError(err)}`
      log('sync %s %p failed: %s', role, peer, describeError(err))
      return undefined
    }
  }

  private enter (peer: PeerId): void {
    this.sessions++
    const key = peer.toString()
    this.active.set(key, (this.active.get(key) ?? 0) + 1)
  }

  private leave (peer: PeerId): void {
    this.sessions--
    const key = peer.toString()
    const left = (this.active.get(key) ?? 1) - 1
    if (left <= 0) this.active.delete(key)
    else this.active.set(key, left)
  }

  /**
   * A new connection: one side starts the session (the smaller peer id), so a
   * pair does not run two at once; the protocol is symmetric, either way both
   * sides catch up.
   */
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail
    const me = this.localPeer()
    if (me !== undefined && me.toString() > peer.toString()) return
    void this.syncWith(peer).catch((err: unknown) => { log('sync with %p failed: %s', peer, describeError(err)) })
  }

  private localPeer (): PeerId | undefined {
    return this.network.peerId
  }

  private schedule (): void {
    if (!this.isRunning) return
    const jitter = this.settings.intervalMs * 0.2 * (Math.random() * 2 - 1)
    this.timer = setTimeout(() => {
      void this.syncAll().finally(() => { this.schedule() })
    }, Math.max(50, this.settings.intervalMs + jitter))
    this.timer.unref()
  }

  /**
   * One anti-entropy round: a session with SYNC_PEERS_PER_ROUND connected
   * peers chosen at random among those not already in one with us (every one
   * with `all`).
   */
  async syncAll (options: { all?: boolean } = {}): Promise<void> {
    const peers = new Map<string, PeerId>()
    for (const connection of this.network.getConnections()) {
      if (connection.status !== 'open') continue
      peers.set(connection.remotePeer.toString(), connection.remotePeer)
    }
    const idle = [...peers.entries()].filter(([key]) => !this.active.has(key)).map(([, peer]) => peer)
    const chosen = options.all === true ? idle : pickAtRandom(idle, this.settings.peersPerRound)
    await Promise.allSettled(chosen.map(async (peer) => await this.syncWith(peer)))
  }

  /**
   * Learn this node's own chain from the mesh before appending: ask every
   * connected peer (waiting up to the deadline for one to connect) for our
   * author's entries and adopt the newer ones, validly signed by our own key.
   * A conflicting one marks the store self-forked and append() refuses.
   */
  async learnOwnChain (options: { timeoutMs: number, signal?: AbortSignal }): Promise<LearnOwnChainResult> {
    const me = this.store.author
    if (me === undefined) throw new ReadOnlyLedgerError('the ledger was opened without the node key, so it has no chain of its own to learn; open it with the signer')
    const before = this.store.head(me)
    const signals = [AbortSignal.timeout(options.timeoutMs), this.controller.signal]
    if (options.signal !== undefined) signals.push(options.signal)
    const signal = AbortSignal.any(signals)
    await this.waitForConnection(signal)
    const peers = new Map<string, PeerId>()
    for (const connection of this.network.getConnections()) peers.set(connection.remotePeer.toString(), connection.remotePeer)
    const results = await Promise.all([...peers.values()].map(async (peer) => await this.syncWith(peer, { want: [me], signal })))
    const after = this.store.head(me)
    const learnt: LearnOwnChainResult = {
      peersAsked: peers.size,
      peersAnswered: results.filter((r) => r !== undefined).length,
      adopted: (after?.seq ?? -1) - (before?.seq ?? -1),
      selfForked: this.store.selfForked
    }
    if (after !== undefined) learnt.head = after as ChainHead
    log('learnt own chain: %o', learnt)
    return learnt
  }

  /**
   * One full sync with every connected peer, bounded by `timeoutMs`: what a
   * node does before it plans work, so that it does not claim a job whose
   * results it merely has not received yet. Never throws; a peer that does
   * not answer in time is simply not counted.
   */
  async catchUp (options: { timeoutMs: number, signal?: AbortSignal }): Promise<CatchUpResult> {
    const signals = [AbortSignal.timeout(options.timeoutMs), this.controller.signal]
    if (options.signal !== undefined) signals.push(options.signal)
    const signal = AbortSignal.any(signals)
    const peers = new Map<string, PeerId>()
    for (const connection of this.network.getConnections()) peers.set(connection.remotePeer.toString(), connection.remotePeer)
    const deadline = new Promise<undefined>((resolve) => {
      if (signal.aborted) resolve(undefined)
      else signal.addEventListener('abort', () => { resolve(undefined) }, { once: true })
    })
    const results = await Promise.all([...peers.values()].map(async (peer) => await Promise.race([
      this.syncWith(peer, { signal }).catch(() => undefined),
      deadline
    ])))
    const answered = results.filter((r) => r !== undefined)
    const caught: CatchUpResult = { peersAsked: peers.size, peersAnswered: answered.length, received: answered.reduce((n, r) => n + r.received, 0) }
    log('caught up before planning: %o', caught)
    return caught
  }

  private async waitForConnection (signal: AbortSignal): Promise<void> {
    if (this.network.getConnections().length > 0 || signal.aborted) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.network.removeEventListener('peer:connect', done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.network.addEventListener('peer:connect', done)
      signal.addEventListener('abort', done, { once: true })
    })
  }
}

/** Up to `count` of `items`, chosen uniformly at random (a partial Fisher–Yates shuffle). */
function pickAtRandom<T> (items: T[], count: number): T[] {
  const pool = [...items]
  const picked: T[] = []
  while (picked.length < count && pool.length > 0) {
    const i = Math.floor(Math.random() * pool.length)
    picked.push(pool[i]!)
    pool[i] = pool[pool.length - 1]!
    pool.pop()
  }
  return picked
}
