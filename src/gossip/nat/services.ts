import { autoNATv2 } from '@libp2p/autonat-v2'
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'
import {
  CIRCUIT_LISTEN_ADDRESS, HOLE_PUNCH_RETRIES, HOLE_PUNCH_TIMEOUT_MS, RELAY_CIRCUIT_DATA_BYTES, RELAY_CIRCUIT_DURATION_MS, RELAY_HOP_TIMEOUT_MS,
  RELAY_MAX_CIRCUITS, RELAY_MAX_CIRCUITS_PER_PEER, RELAY_MAX_RESERVATIONS, RELAY_RESERVATION_TTL_MS
} from './constants.js'

/** Whether a node serves as a relay: `auto` (the default) while it has a public address. */
export const RELAY_MODES = ['auto', 'on', 'off'] as const
export type RelayMode = typeof RELAY_MODES[number]

/** NAT traversal of one node. */
export interface NatOptions {
  /** Serve as a circuit relay for peers behind NAT: `auto` while this node has a public address. */
  relay: RelayMode
  /** Hold a reservation on a relay (listen on `/p2p-circuit`), so peers can reach this node through it. */
  reserve: boolean
  /** Ask the router for a port mapping by UPnP IGD or NAT-PMP (opt-in). */
  upnp: boolean
  /** Try to replace relayed connections by direct ones (DCUtR); default true. */
  holePunch?: boolean
  /** Override the relay's per-connection limits and reservation count (tests); default: constants.ts. */
  relayLimits?: { dataBytes?: number, durationMs?: number, maxReservations?: number }
}

/** The libp2p services NAT traversal adds (each absent when off). */
export type NatServices = {
  relay?: CircuitRelayService
  autonat?: unknown
  dcutr?: unknown
  upnp?: unknown
}

/** The pieces of a libp2p configuration that NAT traversal adds. */
export interface NatConfig {
  transports: NonNullable<Libp2pOptions['transports']>
  /** Extra listen addresses (`/p2p-circuit` when the node reserves a relay slot). */
  listen: string[]
  services: ServiceFactoryMap
}

/**
 * libp2p's own NAT traversal, configured for buildhaus:
 * - the circuit relay v2 transport on every node (dialing through relays,
 *   and listening on one when `reserve`);
 * - the relay server unless `relay` is `off`, with every quantity bounded
 *   (constants.ts); in `auto` mode the gater refuses reservations and
 *   circuits while the node has no public address;
 * - AutoNAT (v2), so a node learns which of its addresses others can dial
 *   (libp2p announces only verified addresses);
 * - DCUtR, which upgrades a relayed connection to a direct one where it can;
 * - UPnP port mapping when asked for.
 */
export async function natConfig (options: NatOptions): Promise<NatConfig> {
  const services: NatConfig['services'] = {
    // AutoNAT v2: its dial-back opens a connection of its own (v1 reused, then closed, the peer's live connection).
    autonat: autoNATv2()
  }
  if (options.relay !== 'off') {
    services.relay = circuitRelayServer({
      hopTimeout: RELAY_HOP_TIMEOUT_MS,
      // One reservation renewal in flight besides the circuits a peer may hold.
      maxInboundHopStreams: RELAY_MAX_CIRCUITS_PER_PEER + 1,
      maxOutboundStopStreams: RELAY_MAX_CIRCUITS,
      reservations: {
        maxReservations: options.relayLimits?.maxReservations ?? RELAY_MAX_RESERVATIONS,
        reservationTtl: RELAY_RESERVATION_TTL_MS,
        applyDefaultLimit: true,
        defaultDataLimit: BigInt(options.relayLimits?.dataBytes ?? RELAY_CIRCUIT_DATA_BYTES),
        defaultDurationLimit: options.relayLimits?.durationMs ?? RELAY_CIRCUIT_DURATION_MS
      }
    })
  }
  if (options.holePunch !== false) services.dcutr = dcutr({ timeout: HOLE_PUNCH_TIMEOUT_MS, retries: HOLE_PUNCH_RETRIES })
  if (options.upnp) {
    // Loaded only when asked for: most nodes never map a port, and the CLI starts faster without it.
    const { uPnPNAT } = await import('@libp2p/upnp-nat')
    const { portMappingClient } = await import('./port-mapping.js')
    services.upnp = uPnPNAT({
      // UPnP IGD as libp2p finds it, and NAT-PMP on the default gateway.
      portMappingClient: portMappingClient({ description: 'buildhaus' }),
      // A mapping the router made is reachable unless the router is itself behind NAT,
      // which the service detects (a private external address) and then maps nothing.
      autoConfirmAddress: true
    })
  }
  return {
    transports: [circuitRelayTransport({ reservationCompletionTimeout: 10_000, maxInboundStopStreams: RELAY_MAX_CIRCUITS })],
    listen: options.reserve ? [CIRCUIT_LISTEN_ADDRESS] : [],
    services
  }
}
