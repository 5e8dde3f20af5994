import type { AbortOptions, Connection, PeerId, PeerStore, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { BuildhausError } from '../../util/errors.js'
import type { KeeperComponents } from '../keeper.js'
import { isCircuit } from './addresses.js'

/** A dial or protocol that is not worth a relayed connection was asked of a peer reachable only through a relay. */
export class RelayOnlyError extends BuildhausError {
  override name = 'RelayOnlyError'
}

/**
 * The keeper's view of the network without relays. A relayed connection
 * carries no gossip (gossipsub does not run over limited connections), so
 * keeping the mesh through a relay would spend the relay's bytes and circuits
 * for nothing: the keeper never dials through one, and a member reached only
 * through a relay counts as not connected, so its direct addresses keep being
 * tried (with the keeper's back-off). When one answers (a port forwarded, a
 * UPnP mapping made) the direct connection replaces the relayed one. Peers
 * behind NAT stay in the mesh through their connections to public nodes;
 * relayed connections are opened on demand (blob fetches).
 */
export function withoutRelayDials (libp2p: KeeperComponents & { peerStore: Pick<PeerStore, 'get'> }): KeeperComponents {
  return {
    getConnections: (peerId?: PeerId) => libp2p.getConnections(peerId).filter((c) => (c as { limits?: unknown }).limits === undefined),
    hangUp: async (peer: PeerId) => { await libp2p.hangUp(peer) },
    dial: async (target: Multiaddr | Multiaddr[] | PeerId, options: { signal: AbortSignal }) => {
      let addresses: Multiaddr[]
      if (Array.isArray(target)) addresses = target
      else if (isMultiaddr(target)) addresses = [target]
      else addresses = await knownAddresses(libp2p.peerStore, target)
      const direct = addresses.filter((a) => !isCircuit(a))
      if (direct.length === 0) throw new RelayOnlyError('reachable only through a relay; not dialed to keep the mesh')
      return await libp2p.dial(direct, options)
    }
  }
}

/** A protocol dialer that never opens a relayed connection, nor uses one, for a protocol that does not run over relays (ledger sync). */
export function withoutRelayedProtocolDials<T extends { dialProtocol: (peer: PeerId, protocol: string, options?: AbortOptions) => Promise<Stream>, getConnections: (peer?: PeerId) => Connection[] }> (network: T): (peer: PeerId, protocol: string, options?: AbortOptions) => Promise<Stream> {
  return async (peer, protocol, options) => {
    const open = network.getConnections(peer).filter((c) => c.status === 'open')
    if (open.length > 0 && open.every((c) => c.limits !== undefined)) throw new RelayOnlyError(`${peer.toString()} is reachable only through a relay, which does not carry ${protocol}`)
    return await network.dialProtocol(peer, protocol, options)
  }
}

function isMultiaddr (value: unknown): value is Multiaddr {
  return typeof value === 'object' && value !== null && 'getComponents' in value && 'encapsulate' in value
}

/** The peer's direct addresses from the address book, each naming the peer. */
async function knownAddresses (peerStore: Pick<PeerStore, 'get'>, peer: PeerId): Promise<Multiaddr[]> {
  try {
    const known = await peerStore.get(peer)
    return known.addresses.map(({ multiaddr: ma }) => ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(multiaddr(`/p2p/${peer.toString()}`)))
  } catch {
    return []
  }
}
