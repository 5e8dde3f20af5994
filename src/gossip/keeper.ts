import type { PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { describeError, UsageError } from '../util/errors.js'
import { delay } from '../util/wait.js'
import { componentLogger } from '../util/logger.js'
import {
  BOOTSTRAP_CHECK_TIMEOUT_MS, BOOTSTRAP_RETRY_MS, DIAL_TIMEOUT_MS, KEEPER_MAX_REMEMBERED, KEEPER_SILENT_MS, KEEPER_TARGET_PEERS, KEEPER_TICK_MS, REDIAL_INTERVAL_MS, REDIAL_MAX_INTERVAL_MS
} from './constants.js'
import type { AddressBook } from './address-book.js'
import { BootstrapUnreachableError } from './errors.js'

const log = componentLogger('gossip:keeper')

/** What the keeper needs of libp2p: dialing, and knowing whom we are connected to. */
export interface KeeperComponents {
  dial (target: Multiaddr | Multiaddr[] | PeerId, options: { signal: AbortSignal }): Promise<unknown>
  getConnections (peerId?: PeerId): Array<{ remotePeer: PeerId, timeline: { open: number } }>
  hangUp (peer: PeerId): Promise<void>
}

export interface MeshKeeperInit {
  /** Bootstrap multiaddrs, each ending in `/p2p/<peer id>`; re-dialed for as long as the node runs. */
  bootstrap: string[]
  /**
   * Where members may be dialed: the keeper dials only addresses the book
   * holds (seen on real connections, introduced, configured), never what a
   * heartbeat claims. The same book gates every dial of the node.
   */
  book: Pick<AddressBook, 'dialable' | 'announced' | 'isMemberPeer'>
  /**
   * Called (every tick) while the node has fewer peers than `targetPeers`:
   * ask trusted peers for introductions (`Introductions.ask`, which paces
   * itself).
   */
  wantPeers?: () => void
  /** First retry delay after a failed dial; doubles up to `maxIntervalMs`. */
  intervalMs?: number
  maxIntervalMs?: number
  tickMs?: number
  dialTimeoutMs?: number
  /** How many other peers (met through presence or discovery) to remember. */
  maxRemembered?: number
  /**
   * Remembered members are dialed only while this node has fewer peers than
   * this: enough for a healthy gossip mesh, without every node connecting to
   * every other in a large one. Bootstrap peers are always re-dialed.
   */
  targetPeers?: number
  /**
   * A member we have heard before that stays connected but silent this long
   * (no heartbeat, connection older than this) is hung up on and re-dialed:
   * a half-attached peer, e.g. a gossip stream that died while the connection
   * lived on, heals instead of lingering. Default: the presence timeout plus
   * a few heartbeats.
   */
  silentMs?: number
}

interface Target {
  peerId: PeerId
  /** The configured multiaddrs of a bootstrap peer (each ending in its /p2p/ id); members' come from the address book. */
  addresses: Multiaddr[]
  bootstrap: boolean
  failures: number
  /** Times the target was due a dial but the book held no address to dial it at. */
  unreachable: number
  nextAttempt: number
  dialing: boolean
  lastError?: string
  /** When we last heard this peer's heartbeat (only for peers that are buildhaus members). */
  heardAt?: number
  /** Silence tolerated before hanging up, when the member's heartbeats come less often than usual. */
  silentMs?: number
}

/**
 * Keeps this node in the mesh. libp2p's own reconnection gives up after a few
 * tries, so the keeper re-dials bootstrap peers and remembered members it is
 * not connected to (members only while it has fewer than `targetPeers`), with
 * exponential back-off capped at `maxIntervalMs`, and never stops: after a
 * partition of any length the mesh heals within one back-off interval of the
 * network coming back.
 */
export class MeshKeeper {
  private readonly components: KeeperComponents
  private readonly intervalMs: number
  private readonly maxIntervalMs: number
  private readonly tickMs: number
  private readonly dialTimeoutMs: number
  private readonly maxRemembered: number
  private readonly targetPeers: number
  private readonly silentMs: number
  private readonly book: MeshKeeperInit['book']
  private readonly wantPeers: (() => void) | undefined
  private readonly targets = new Map<string, Target>()
  private timer?: ReturnType<typeof setInterval>
  private controller?: AbortController

  constructor (components: KeeperComponents, init: MeshKeeperInit) {
    this.components = components
    this.intervalMs = init.intervalMs ?? REDIAL_INTERVAL_MS
    this.maxIntervalMs = init.maxIntervalMs ?? REDIAL_MAX_INTERVAL_MS
    this.tickMs = init.tickMs ?? KEEPER_TICK_MS
    this.dialTimeoutMs = init.dialTimeoutMs ?? DIAL_TIMEOUT_MS
    this.maxRemembered = init.maxRemembered ?? KEEPER_MAX_REMEMBERED
    this.targetPeers = init.targetPeers ?? KEEPER_TARGET_PEERS
    this.silentMs = init.silentMs ?? KEEPER_SILENT_MS
    this.book = init.book
    this.wantPeers = init.wantPeers
    for (const text of init.bootstrap) {
      const address = parseBootstrapAddress(text)
      const peerId = peerIdFromString(address.getComponents().findLast((c) => c.name === 'p2p')!.value!)
      const known = this.targets.get(peerId.toString())
      if (known !== undefined) known.addresses.push(address)
      else this.targets.set(peerId.toString(), { peerId, addresses: [address], bootstrap: true, failures: 0, unreachable: 0, nextAttempt: 0, dialing: false })
    }
  }

  async start (): Promise<void> {
    if (this.timer !== undefined) return
    this.controller = new AbortController()
    this.timer = setInterval(() => { this.tick() }, this.tickMs)
    this.tick()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    this.controller?.abort()
  }

  /**
   * Keep re-dialing this peer whenever we lose it (a member heard through
   * presence, a peer found by mDNS) — if there is a way to reach it: a peer
   * the address book has no address for and that is not connected is not
   * remembered, so heartbeats from any number of fresh keys cannot crowd
   * real members out. `addresses` (a heartbeat's) go to the book, which keeps
   * them only for members. Past `maxRemembered`, strangers are forgotten
   * before members, the least recently heard first.
   */
  remember (peerId: PeerId, addresses: string[] = [], heard = false): void {
    const key = peerId.toString()
    if (addresses.length > 0) this.book.announced(peerId, addresses)
    const known = this.targets.get(key)
    if (known !== undefined) {
      if (heard) known.heardAt = Date.now()
      // Move to the back: the most recently seen are kept longest.
      if (!known.bootstrap) {
        this.targets.delete(key)
        this.targets.set(key, known)
      }
      return
    }
    if (!this.isConnected(peerId) && this.book.dialable(peerId).length === 0) return
    this.targets.set(key, { peerId, addresses: [], bootstrap: false, failures: 0, unreachable: 0, nextAttempt: Date.now() + this.intervalMs, dialing: false, ...(heard ? { heardAt: Date.now() } : {}) })
    const remembered = [...this.targets.values()].filter((t) => !t.bootstrap)
    let excess = remembered.length - this.maxRemembered
    if (excess <= 0) return
    // Strangers first, then members, each oldest first (the map's order).
    for (const old of [...remembered.filter((t) => !this.book.isMemberPeer(t.peerId)), ...remembered.filter((t) => this.book.isMemberPeer(t.peerId))]) {
      if (excess-- <= 0) break
      this.targets.delete(old.peerId.toString())
    }
  }

  /**
   * A member's heartbeat arrived: remember where it listens, and that it is
   * alive. `silentMs` stretches the silence tolerated before hanging up, for
   * a member that announces a longer heartbeat interval (a large mesh).
   */
  heard (peerId: PeerId, addresses: string[] = [], silentMs?: number): void {
    this.remember(peerId, addresses, true)
    const target = this.targets.get(peerId.toString())
    if (target !== undefined && silentMs !== undefined) target.silentMs = Math.max(this.silentMs, silentMs)
  }

  /** A peer was discovered (mDNS, …): dial it now and keep it. */
  discovered (peerId: PeerId): void {
    this.remember(peerId)
    const target = this.targets.get(peerId.toString())
    if (target !== undefined && !this.isConnected(target.peerId)) {
      target.nextAttempt = 0
      this.tick()
    }
  }

  /** Bootstrap peers and remembered members, where each may be dialed, and whether each is connected now. */
  status (): Array<{ peerId: string, addresses: string[], bootstrap: boolean, connected: boolean, failures: number, unreachable: number, lastError?: string }> {
    return [...this.targets.values()].map((t) => ({
      peerId: t.peerId.toString(),
      addresses: this.addressesOf(t).map(String),
      bootstrap: t.bootstrap,
      connected: this.isConnected(t.peerId),
      failures: t.failures,
      unreachable: t.unreachable,
      ...(t.lastError !== undefined ? { lastError: t.lastError } : {})
    }))
  }

  private addressesOf (target: Target): Multiaddr[] {
    return target.bootstrap ? target.addresses : this.book.dialable(target.peerId)
  }

  /**
   * At start: dial every bootstrap peer and wait until one answers. Throws
   * BootstrapUnreachableError, naming the address and what went wrong, when
   * none does within `timeoutMs`. Does nothing without bootstrap peers.
   */
  async connectBootstrap (timeoutMs = BOOTSTRAP_CHECK_TIMEOUT_MS): Promise<void> {
    const targets = [...this.targets.values()].filter((t) => t.bootstrap)
    if (targets.length === 0) return
    const lastErrors = new Map<Target, string>()
    const deadline = AbortSignal.timeout(timeoutMs)
    const done = new AbortController()
    const signal = AbortSignal.any([deadline, done.signal])
    try {
      await Promise.any(targets.map(async (target) => {
        // Retry until the deadline: a peer may refuse a burst of new connections (libp2p limits them per host).
        while (true) {
          try {
            await this.components.dial(target.addresses, { signal })
            target.failures = 0
            done.abort()
            return
          } catch (err) {
            // A dial cut short by the deadline says less than an earlier refusal: keep the refusal.
            if (!deadline.aborted) lastErrors.set(target, isTimeout(err) ? `no answer within ${this.dialTimeoutMs / 1000} s` : describeError(err))
            else if (!lastErrors.has(target)) lastErrors.set(target, `no answer within ${timeoutMs / 1000} s`)
            if (signal.aborted) throw err
            await delay(BOOTSTRAP_RETRY_MS, signal).catch(() => {})
            if (signal.aborted) throw err
          }
        }
      }))
    } catch {
      // Name the most telling failure: a refusal or a wrong peer says more than silence.
      const failed = targets.find((t) => lastErrors.has(t) && !lastErrors.get(t)!.startsWith('no answer')) ?? targets[0]!
      const address = failed.addresses[0]!.toString()
      const error = oneLine(lastErrors.get(failed) ?? 'no answer')
      if (targets.length === 1) {
        throw new BootstrapUnreachableError(`cannot reach the bootstrap peer ${address}: ${error}; check that the peer is running and the address (including its /p2p/ peer id) is right, or start without --bootstrap to begin a new mesh`)
      }
      throw new BootstrapUnreachableError(`cannot reach any of the ${targets.length} bootstrap peers (${address}: ${error}); check that they are running and the addresses (including their /p2p/ peer ids) are right, or start without --bootstrap to begin a new mesh`)
    }
  }

  private isConnected (peerId: PeerId): boolean {
    return this.components.getConnections(peerId).length > 0
  }

  /**
   * A member that is connected but has not been heard for `silentMs`, over a
   * connection at least that old, is half-attached (libp2p can keep a
   * connection whose gossip stream died): hang up so that the re-dial below
   * starts afresh on both sides.
   */
  private hangUpIfSilent (target: Target, now: number): void {
    const silentMs = target.silentMs ?? this.silentMs
    if (target.heardAt === undefined || now - target.heardAt < silentMs) return
    const connections = this.components.getConnections(target.peerId)
    const oldest = Math.min(...connections.map((c) => c.timeline.open))
    if (now - oldest < silentMs) return
    log('%p is connected but silent for %d ms: hanging up to reconnect afresh', target.peerId, now - target.heardAt)
    // Count the silence from now, so a peer that stays silent is retried at this pace, not every tick.
    target.heardAt = now
    target.nextAttempt = now + this.intervalMs
    this.components.hangUp(target.peerId).catch((err: unknown) => { log('hanging up on %p failed: %s', target.peerId, describeError(err)) })
  }

  private tick (): void {
    const signal = this.controller?.signal
    if (signal === undefined || signal.aborted) return
    const now = Date.now()
    const peers = new Set(this.components.getConnections().map((c) => c.remotePeer.toString())).size
    const dialingMembers = [...this.targets.values()].filter((t) => t.dialing && !t.bootstrap).length
    // Dial only as many members as it takes to reach the target, not every member we know.
    let memberBudget = this.targetPeers - peers - dialingMembers
    // Fewer peers than wanted: trusted peers may know where more are.
    if (peers < this.targetPeers) this.wantPeers?.()
    // Most recently seen members first (the map keeps them in that order, oldest first).
    for (const target of [...this.targets.values()].reverse()) {
      if (target.dialing || target.nextAttempt > now) continue
      if (this.isConnected(target.peerId)) {
        target.failures = 0
        this.hangUpIfSilent(target, now)
        continue
      }
      if (!target.bootstrap && memberBudget <= 0) continue
      const addresses = this.addressesOf(target)
      if (addresses.length === 0) {
        // Nothing seen to dial it at (an address tried once and failed, never proven): wait for an introduction.
        target.unreachable++
        target.nextAttempt = now + this.intervalMs
        continue
      }
      if (!target.bootstrap) memberBudget--
      target.dialing = true
      const dialSignal = AbortSignal.any([signal, AbortSignal.timeout(this.dialTimeoutMs)])
      this.components.dial(addresses, { signal: dialSignal }).then(() => {
        if (target.failures > 0) log('reconnected to %p after %d failed dials', target.peerId, target.failures)
        target.failures = 0
        target.lastError = undefined
        target.nextAttempt = Date.now() + this.intervalMs
      }, (err: unknown) => {
        target.failures++
        target.lastError = oneLine(describeError(err))
        const backoff = Math.min(this.maxIntervalMs, this.intervalMs * 2 ** Math.min(target.failures - 1, 16))
        // Jitter, so peers that lost each other at the same moment do not re-dial in lockstep.
        target.nextAttempt = Date.now() + backoff * (0.8 + Math.random() * 0.4)
        log('dial to %p failed (%d in a row, next in %d ms): %s', target.peerId, target.failures, backoff, target.lastError)
      }).finally(() => {
        target.dialing = false
      })
    }
  }
}

/** A bootstrap address must name its peer (`/p2p/<peer id>`): Noise then proves we reached the right one. */
export function parseBootstrapAddress (text: string): Multiaddr {
  let address: Multiaddr
  try {
    address = multiaddr(text)
  } catch (err) {
    throw new UsageError(`--bootstrap ${text} is not a valid multiaddr (${describeError(err)}); write it like /ip4/192.0.2.7/tcp/4710/p2p/12D3KooW…`)
  }
  const peer = address.getComponents().findLast((c) => c.name === 'p2p')?.value
  if (peer === undefined) {
    throw new UsageError(`--bootstrap ${text} does not name a peer; add /p2p/<peer id> (the peer id that node printed when it started)`)
  }
  try {
    peerIdFromString(peer)
  } catch {
    throw new UsageError(`--bootstrap ${text} ends in /p2p/${peer}, which is not a valid peer id; copy the peer id the node printed when it started`)
  }
  return address
}

/** libp2p reports a handshake that never finished as e.g. EncryptionFailedError "…aborted due to timeout". */
function isTimeout (err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError' || /\btime(d ?)?out\b/i.test(err.message))
}

function oneLine (text: string): string {
  return text.split('\n')[0]!.trim().replace(/[.:;]+$/, '')
}

export function createMeshKeeper (components: KeeperComponents, init: MeshKeeperInit): MeshKeeper {
  return new MeshKeeper(components, init)
}
