/**
 * Bounds of the circuit relay a node with a public address serves. A relay
 * carries strangers' bytes on the volunteer's uplink: every quantity it can be
 * asked for is bounded here, and docs/NETWORK.md and docs/SECURITY.md quote
 * these numbers.
 */

/** Reservations (NATed peers reachable through this relay) held at once. libp2p's default is 15. */
export const RELAY_MAX_RESERVATIONS = 128

/** Reservations held at once for peers behind one IP address (a lab behind one NAT; a Sybil's many keys). */
export const RELAY_MAX_RESERVATIONS_PER_IP = 16

/** How long a reservation lasts before its holder must renew it (libp2p's client renews ahead of expiry). */
export const RELAY_RESERVATION_TTL_MS = 60 * 60_000

/**
 * Bytes one relayed connection may carry, both directions together, before
 * the relay resets it: room for a source tarball or a build log, not for bulk.
 * A blob larger than what a relayed connection has left is not attempted over it.
 */
export const RELAY_CIRCUIT_DATA_BYTES = 64 * 1024 * 1024

/** How long one relayed connection may stay open before the relay resets it. */
export const RELAY_CIRCUIT_DURATION_MS = 10 * 60_000

/** Relayed connections this node carries at once, for everyone. */
export const RELAY_MAX_CIRCUITS = 64

/** Relayed connections at once that one peer may open through this relay, or be reached by. */
export const RELAY_MAX_CIRCUITS_PER_PEER = 4

/**
 * New relayed connections one peer may open through this relay per window:
 * with the per-circuit byte limit this bounds the relay bytes one peer can
 * draw (16 × 64 MiB per 10 minutes at most, ~1.7 MB/s), however often it reconnects.
 */
export const RELAY_CIRCUITS_PER_WINDOW = 16
export const RELAY_CIRCUIT_WINDOW_MS = 10 * 60_000

/** Peers whose circuit-rate windows are remembered (the least recently used are forgotten first). */
export const RELAY_RATE_PEERS = 4096

/** A relay request (reserve or connect) must complete within this time. */
export const RELAY_HOP_TIMEOUT_MS = 30_000

/** DCUtR: one attempt at upgrading a relayed connection to a direct one, and how many attempts. */
export const HOLE_PUNCH_TIMEOUT_MS = 5_000
export const HOLE_PUNCH_RETRIES = 3

/** Peers whose "reached by a hole punch" mark is kept (most recent first). */
export const MAX_TRACKED_UPGRADES = 1024

/** In a closed mesh, how often connections to peers that stopped being members are closed. */
export const MEMBERSHIP_SWEEP_MS = 10_000

/** The listen address that asks libp2p's circuit relay transport for a reservation on some relay. */
export const CIRCUIT_LISTEN_ADDRESS = '/p2p-circuit'
