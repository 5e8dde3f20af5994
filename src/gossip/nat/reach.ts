import type { Connection, PeerId } from '@libp2p/interface'
import { MAX_TRACKED_UPGRADES } from './constants.js'
import { isCircuit } from './addresses.js'

/**
 * How this node reaches a peer now:
 * - `direct`: an ordinary connection (TCP, either direction);
 * - `hole-punched`: a direct connection that replaced a relayed one (DCUtR:
 *   the peer behind NAT was reached through a relay first, then directly);
 * - `relayed`: only through a circuit relay, within the relay's limits;
 * - `none`: no connection (a member heard through gossip only).
 */
export type Reach = 'direct' | 'hole-punched' | 'relayed' | 'none'

/** What the tracker needs of libp2p: its connections and their open/close events. */
export interface ReachComponents {
  getConnections (peerId?: PeerId): Connection[]
  addEventListener (type: 'connection:open' | 'connection:close', listener: (event: CustomEvent<Connection>) => void): void
  removeEventListener (type: 'connection:open' | 'connection:close', listener: (event: CustomEvent<Connection>) => void): void
}

export interface ReachStats {
  /** Relayed connections opened (either direction) since start. */
  relayedOpened: number
  /** Direct connections that replaced a relayed one since start. */
  upgraded: number
}

/** A connection through a relay (its remote address names the relay and `/p2p-circuit`). */
export function isRelayed (connection: Pick<Connection, 'remoteAddr'>): boolean {
  return isCircuit(connection.remoteAddr)
}

/**
 * Tells how each peer is reached. A direct connection that opens while a
 * relayed connection to the same peer is open is an upgrade of it (what
 * DCUtR does when it succeeds, by a hole punch or by dialing the side that
 * turned out reachable, and what the keeper does when a relay-only member's
 * direct address starts answering); the peer is then `hole-punched` for as
 * long as a direct connection to it stays open. The relayed connection is then
 * closed, to free the relay (DCUtR does so itself; a transfer cut short by it
 * is retried over the direct connection by the blob exchange).
 */
export class ReachTracker {
  private readonly components: ReachComponents
  /** Peers reached by an upgrade, most recent last (bounded). */
  private readonly upgraded = new Set<string>()
  private readonly counters: ReachStats = { relayedOpened: 0, upgraded: 0 }
  private running = false

  constructor (components: ReachComponents) {
    this.components = components
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.components.addEventListener('connection:open', this.onOpen)
    this.components.addEventListener('connection:close', this.onClose)
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.components.removeEventListener('connection:open', this.onOpen)
    this.components.removeEventListener('connection:close', this.onClose)
    this.upgraded.clear()
  }

  stats (): ReachStats {
    return { ...this.counters }
  }

  reachOf (peer: PeerId): Reach {
    const open = this.components.getConnections(peer).filter((c) => c.status === 'open')
    if (open.some((c) => !isRelayed(c))) return this.upgraded.has(peer.toString()) ? 'hole-punched' : 'direct'
    return open.length > 0 ? 'relayed' : 'none'
  }

  private readonly onOpen = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    const key = connection.remotePeer.toString()
    if (isRelayed(connection)) {
      this.counters.relayedOpened++
      return
    }
    const relayed = this.components.getConnections(connection.remotePeer)
      .filter((c) => c.id !== connection.id && c.status === 'open' && isRelayed(c))
    if (relayed.length === 0) return
    this.counters.upgraded++
    this.upgraded.delete(key)
    this.upgraded.add(key)
    if (this.upgraded.size > MAX_TRACKED_UPGRADES) this.upgraded.delete(this.upgraded.values().next().value!)
    for (const old of relayed) {
      old.close().catch((err: unknown) => { old.abort(err instanceof Error ? err : new Error(String(err))) })
    }
  }

  private readonly onClose = (event: CustomEvent<Connection>): void => {
    const peer = event.detail.remotePeer
    // Forget the upgrade once no direct connection is left: a later one is simply direct.
    const direct = this.components.getConnections(peer).some((c) => c.id !== event.detail.id && c.status === 'open' && !isRelayed(c))
    if (!direct) this.upgraded.delete(peer.toString())
  }
}

export function reachTracker (components: ReachComponents): ReachTracker {
  return new ReachTracker(components)
}
