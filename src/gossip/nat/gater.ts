import type { Connection, ConnectionGater, PeerId } from '@libp2p/interface'
import { RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Multiaddr } from '@multiformats/multiaddr'
import { authorOfPeerId } from '../../crypto/peer-id.js'
import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import {
  MEMBERSHIP_SWEEP_MS, RELAY_CIRCUIT_WINDOW_MS, RELAY_CIRCUITS_PER_WINDOW, RELAY_MAX_CIRCUITS, RELAY_MAX_CIRCUITS_PER_PEER,
  RELAY_MAX_RESERVATIONS_PER_IP, RELAY_RATE_PEERS
} from './constants.js'
import { hostOf, isCircuit } from './addresses.js'

const log = componentLogger('gossip:gater')

/**
 * Who may be a member of a closed mesh. Lower layers never import the
 * membership layer: the node passes this function in. An author and a peer id
 * are the same Ed25519 key (src/crypto/peer-id.ts).
 */
export interface ClosedMesh {
  isMember (authorHex: string): boolean
}

/** Bounds on what this node relays (constants.ts has the defaults and why). */
export interface RelayLimits {
  maxCircuits: number
  maxCircuitsPerPeer: number
  circuitsPerWindow: number
  windowMs: number
  maxReservationsPerIp: number
}

export interface MeshGaterInit {
  /** When set, the mesh is closed: only members connect, dial, reserve or relay. */
  closedMesh?: ClosedMesh
  /**
   * Peer ids admitted even when this node does not (yet) count them as
   * members: the bootstrap peers its operator configured. A fresh node knows
   * only the founders until it has synced the log from someone.
   */
  alwaysAllow?: string[]
  /** Whether this node serves as a relay right now (its mode, and whether it has a public address). */
  relayServing?: () => boolean
  relayLimits?: Partial<RelayLimits>
}

/** What the gater reads of the running node; bound once libp2p exists (the gater is made before it). */
export interface GaterView {
  getConnections (peerId?: PeerId): Connection[]
  /** The relay service's reservations (absent when this node does not relay). */
  reservations?: () => Array<{ peer: PeerId, addr: Multiaddr }>
}

export interface GaterStats {
  /** Connections, dials and relayed connections refused because the peer is not a member of the closed mesh. */
  nonMembers: number
  /** Relay reservations refused (not serving, or a per-address bound). */
  reservations: number
  /** Relayed connections refused (not serving, a per-peer or total bound, or the per-peer rate). */
  circuits: number
  /** Open connections closed because their peer stopped being a member. */
  swept: number
}

/**
 * The node's libp2p connection gater: closed-mesh admission and the relay's
 * bounds in one place (libp2p takes one gater).
 *
 * In a closed mesh every encrypted connection, inbound or outbound, direct or
 * relayed, is refused unless its peer is a member; dials to non-members are
 * not made; and a sweep closes connections to peers that stop being members.
 * As a relay, a reservation or a relayed connection is refused beyond the
 * bounds of RelayLimits.
 */
export class MeshGater implements ConnectionGater {
  private readonly closedMesh?: ClosedMesh
  private readonly alwaysAllow: Set<string>
  private readonly relayServing: () => boolean
  private readonly limits: RelayLimits
  private view?: GaterView
  /** Per source peer: when its current window started and how many circuits it opened in it. */
  private readonly windows = new Map<string, { start: number, count: number }>()
  private readonly counters: GaterStats = { nonMembers: 0, reservations: 0, circuits: 0, swept: 0 }
  private timer?: ReturnType<typeof setInterval>

  constructor (init: MeshGaterInit = {}) {
    if (init.closedMesh !== undefined) this.closedMesh = init.closedMesh
    this.alwaysAllow = new Set(init.alwaysAllow ?? [])
    this.relayServing = init.relayServing ?? (() => false)
    this.limits = {
      maxCircuits: init.relayLimits?.maxCircuits ?? RELAY_MAX_CIRCUITS,
      maxCircuitsPerPeer: init.relayLimits?.maxCircuitsPerPeer ?? RELAY_MAX_CIRCUITS_PER_PEER,
      circuitsPerWindow: init.relayLimits?.circuitsPerWindow ?? RELAY_CIRCUITS_PER_WINDOW,
      windowMs: init.relayLimits?.windowMs ?? RELAY_CIRCUIT_WINDOW_MS,
      maxReservationsPerIp: init.relayLimits?.maxReservationsPerIp ?? RELAY_MAX_RESERVATIONS_PER_IP
    }
  }

  /** Give the gater the running node to count connections and reservations on. */
  attach (view: GaterView): void {
    this.view = view
  }

  get closed (): boolean {
    return this.closedMesh !== undefined
  }

  stats (): GaterStats {
    return { ...this.counters }
  }

  /** Is this peer admitted? Always, in an open mesh. */
  admits (peerId: PeerId): boolean {
    if (this.closedMesh === undefined) return true
    const id = peerId.toString()
    if (this.alwaysAllow.has(id)) return true
    try {
      return this.closedMesh.isMember(authorOfPeerId(peerId))
    } catch (err) {
      // Not an Ed25519 key (so not an author), or the membership could not answer: not admitted.
      log('cannot tell whether %s is a member: %s', id, describeError(err))
      return false
    }
  }

  /** Start the membership sweep (closed meshes only). */
  async start (): Promise<void> {
    if (this.closedMesh === undefined || this.timer !== undefined) return
    this.timer = setInterval(() => { this.sweep() }, MEMBERSHIP_SWEEP_MS)
    this.timer.unref?.()
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Close every open connection whose peer is no longer admitted (an unvouched or revoked key). */
  sweep (): number {
    if (this.closedMesh === undefined || this.view === undefined) return 0
    let closed = 0
    for (const connection of this.view.getConnections()) {
      if (this.admits(connection.remotePeer)) continue
      closed++
      this.counters.swept++
      log('closing the connection to %p: no longer a member of the closed mesh', connection.remotePeer)
      connection.close().catch((err: unknown) => { connection.abort(err instanceof Error ? err : new Error(String(err))) })
    }
    return closed
  }

  denyDialPeer (peerId: PeerId): boolean {
    return this.refuseNonMember(peerId, 'dial')
  }

  denyInboundEncryptedConnection (peerId: PeerId): boolean {
    return this.refuseNonMember(peerId, 'inbound connection')
  }

  denyOutboundEncryptedConnection (peerId: PeerId): boolean {
    return this.refuseNonMember(peerId, 'outbound connection')
  }

  /** At the destination of a relayed connection: the peer on the other side must be admitted. */
  denyInboundRelayedConnection (_relay: PeerId, remotePeer: PeerId): boolean {
    return this.refuseNonMember(remotePeer, 'relayed connection')
  }

  /** As a relay: may `source` hold a reservation (be reachable through us)? */
  denyInboundRelayReservation (source: PeerId): boolean {
    if (this.refuseNonMember(source, 'relay reservation')) return true
    const reason = this.reservationRefusal(source)
    if (reason === undefined) return false
    this.counters.reservations++
    log('refusing a relay reservation for %p: %s', source, reason)
    return true
  }

  /** As a relay: may `source` open a relayed connection to `destination` through us? */
  denyOutboundRelayedConnection (source: PeerId, destination: PeerId): boolean {
    if (this.refuseNonMember(source, 'relayed connection') || this.refuseNonMember(destination, 'relayed connection')) return true
    const reason = this.circuitRefusal(source, destination)
    if (reason === undefined) return false
    this.counters.circuits++
    log('refusing a relayed connection from %p to %p: %s', source, destination, reason)
    return true
  }

  private refuseNonMember (peerId: PeerId, what: string): boolean {
    if (this.admits(peerId)) return false
    this.counters.nonMembers++
    log('refusing the %s of %p: not a member of this closed mesh', what, peerId)
    return true
  }

  private reservationRefusal (source: PeerId): string | undefined {
    if (!this.relayServing()) return 'this node does not serve as a relay (no public address, or --relay off)'
    const view = this.view
    if (view?.reservations === undefined) return undefined
    const held = view.reservations()
    // A renewal is not a new reservation.
    if (held.some((r) => r.peer.equals(source))) return undefined
    const host = this.directHostOf(source)
    if (host === undefined) return undefined
    const sameHost = held.filter((r) => hostOf(r.addr) === host).length
    if (sameHost >= this.limits.maxReservationsPerIp) return `${sameHost} reservations already come from ${host}`
    return undefined
  }

  private circuitRefusal (source: PeerId, destination: PeerId): string | undefined {
    if (!this.relayServing()) return 'this node does not serve as a relay'
    const view = this.view
    if (view === undefined) return undefined
    // Each relayed connection we carry is one STOP stream we opened to its destination.
    const circuits = (peer?: PeerId): number => view.getConnections(peer)
      .reduce((n, c) => n + c.streams.filter((s) => s.protocol === RELAY_V2_STOP_CODEC && s.direction === 'outbound').length, 0)
    const total = circuits()
    if (total >= this.limits.maxCircuits) return `already carrying ${total} relayed connections`
    const toDestination = circuits(destination)
    if (toDestination >= this.limits.maxCircuitsPerPeer) return `the destination already has ${toDestination} relayed connections through this node`
    // The source's HOP streams include the one asking now.
    const fromSource = view.getConnections(source)
      .reduce((n, c) => n + c.streams.filter((s) => s.protocol === RELAY_V2_HOP_CODEC && s.direction === 'inbound').length, 0) - 1
    if (fromSource >= this.limits.maxCircuitsPerPeer) return `the source already has ${fromSource} relayed connections through this node`
    if (!this.takeFromWindow(source)) return `the source opened ${this.limits.circuitsPerWindow} relayed connections within ${this.limits.windowMs / 1000} s`
    return undefined
  }

  /** Count one circuit against the source's window; false when the window is full. */
  private takeFromWindow (source: PeerId): boolean {
    const key = source.toString()
    const now = Date.now()
    let window = this.windows.get(key)
    if (window === undefined || now - window.start >= this.limits.windowMs) window = { start: now, count: 0 }
    this.windows.delete(key)
    this.windows.set(key, window)
    if (this.windows.size > RELAY_RATE_PEERS) this.windows.delete(this.windows.keys().next().value!)
    if (window.count >= this.limits.circuitsPerWindow) return false
    window.count++
    return true
  }

  private directHostOf (peer: PeerId): string | undefined {
    const connection = this.view?.getConnections(peer).find((c) => !isCircuit(c.remoteAddr))
    return connection === undefined ? undefined : hostOf(connection.remoteAddr)
  }
}

export function meshGater (init?: MeshGaterInit): MeshGater {
  return new MeshGater(init)
}
