import { peerIdFromString } from '@libp2p/peer-id'
import type { BlobExchange } from '../blobs/exchange/index.js'
import type { MeshLibp2p } from '../gossip/libp2p.js'
import { isCircuit, isRelayed, type MeshGater, type Reachability, type ReachTracker } from '../gossip/nat/index.js'
import type { NetworkStatus, PeerReach } from './api/types.js'
import type { NodeConfig } from './config.js'

export interface NetworkParts {
  libp2p: MeshLibp2p
  gater: MeshGater
  reach: ReachTracker
  exchange: Pick<BlobExchange, 'stats'>
  config: Pick<NodeConfig, 'relay' | 'upnp' | 'swarmKey'>
  reachability: () => Reachability
  relayServing: () => boolean
}

/** What GET /api/health says of the network: reachability, relays both ways, private and closed mesh, what was refused. */
export function networkStatus (parts: NetworkParts): NetworkStatus {
  const { libp2p, gater, reach, config } = parts
  const connections = libp2p.getConnections().filter((c) => c.status === 'open')
  const relayed = connections.filter((c) => isRelayed(c)).length
  const relays = new Set<string>()
  for (const address of libp2p.getMultiaddrs()) {
    if (!isCircuit(address)) continue
    // …/p2p/<relay>/p2p-circuit/p2p/<us>: the relay is the p2p component before p2p-circuit.
    const components = address.getComponents()
    const at = components.findIndex((c) => c.name === 'p2p-circuit')
    const relay = components.slice(0, at).findLast((c) => c.name === 'p2p')?.value
    if (relay !== undefined) relays.add(relay)
  }
  const stats = reach.stats()
  return {
    reachability: parts.reachability(),
    relays: [...relays],
    relay: { mode: config.relay, serving: config.relay !== 'off' && parts.relayServing(), reservations: libp2p.services.relay?.reservations.size ?? 0 },
    private: config.swarmKey !== undefined,
    closed: gater.closed,
    upnp: config.upnp,
    connections: { direct: connections.length - relayed, relayed },
    relayedOpened: stats.relayedOpened,
    upgraded: stats.upgraded,
    relayedBlobs: { fetched: parts.exchange.stats().fetchedRelayed, served: parts.exchange.stats().servedRelayed },
    refused: gater.stats()
  }
}

/** How this node reaches a peer now (by peer id string). */
export function reachOfPeer (reach: ReachTracker, peerId: string): PeerReach {
  try {
    return reach.reachOf(peerIdFromString(peerId))
  } catch {
    return 'none'
  }
}
