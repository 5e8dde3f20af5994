import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
import { RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import { meshGater, type MeshGater, type MeshGaterInit, type NatOptions } from '../../src/gossip/nat/index.js'
import { waitFor } from '../../src/util/wait.js'
import { hostilePeer } from './hostile-peer.js'

type Teardown = (fn: () => unknown) => void

/** A relay on loopback with the project's gater and small bounds, so they can be reached in a test. */
export async function startRelay (teardown: Teardown, options: { gater?: MeshGaterInit, nat?: Partial<NatOptions> } = {}): Promise<{ libp2p: MeshLibp2p, gater: MeshGater }> {
  const gater = meshGater({ relayServing: () => true, ...options.gater })
  const libp2p = await createMeshLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    nat: { relay: 'on', reserve: false, upnp: false, holePunch: false, ...options.nat },
    gater
  })
  gater.attach({
    getConnections: (peer) => libp2p.getConnections(peer),
    reservations: () => [...(libp2p.services.relay?.reservations.entries() ?? [])].map(([peer, r]) => ({ peer, addr: r.addr }))
  })
  teardown(async () => { await libp2p.stop() })
  return { libp2p, gater }
}

/** A peer behind "NAT": it holds a reservation on the relay and is dialed through it. */
export async function reservedPeer (teardown: Teardown, relay: MeshLibp2p, nat: Partial<NatOptions> = {}): Promise<MeshLibp2p> {
  const peer = await hostilePeer(teardown, { nat: { relay: 'off', reserve: true, upnp: false, holePunch: false, ...nat } })
  await peer.libp2p.dial(relay.getMultiaddrs()[0]!)
  await waitFor(() => peer.libp2p.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit')), { timeoutMs: 15_000, what: 'a relay reservation' })
  return peer.libp2p
}

/** Relayed connections the relay carries now (one STOP stream to each destination). */
export function carried (relay: MeshLibp2p): number {
  return relay.getConnections().reduce((n, c) => n + c.streams.filter((s) => s.protocol === RELAY_V2_STOP_CODEC).length, 0)
}

export function circuitAddress (relay: MeshLibp2p, target: MeshLibp2p): Multiaddr {
  return multiaddr(`${relay.getMultiaddrs()[0]!.toString()}/p2p-circuit/p2p/${target.peerId.toString()}`)
}

