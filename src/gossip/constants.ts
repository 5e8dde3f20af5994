/** Default TCP port of `buildhaus-node join` (documented in the README). */
export const DEFAULT_P2P_PORT = 4710

/** Default listen address of `buildhaus-node join`: every interface, the documented port. */
export const DEFAULT_LISTEN_ADDRESS = `/ip4/0.0.0.0/tcp/${DEFAULT_P2P_PORT}`

/**
 * Largest gossipsub RPC accepted from a peer. One entry is at most 64 KiB,
 * but gossipsub answers an IWANT with every message asked for in one RPC:
 * at 128 KiB, a reply carrying three large jobs made the receiver reset the
 * stream, and the sender's gossip to it stopped (seen under the spam test,
 * test/hostile/spam.test.ts). 1 MiB, as go-libp2p's default, takes sixteen
 * of the largest entries per RPC; each message in it is still checked
 * against the entry limit on its own.
 */
export const MAX_GOSSIP_MESSAGE_BYTES = 1024 * 1024

/** Peers from one IP address beyond this many lower each other's gossip score (loopback is exempt). */
export const IP_COLOCATION_THRESHOLD = 50

/** How long a dial to one peer may take before it is abandoned. */
export const DIAL_TIMEOUT_MS = 5_000

/** How often the keeper re-dials bootstrap peers it is not connected to, at first. */
export const REDIAL_INTERVAL_MS = 3_000

/** The keeper's back-off doubles after each failed dial up to this ceiling; it never gives up. */
export const REDIAL_MAX_INTERVAL_MS = 30_000

/** How often the keeper looks for targets that are due a dial. */
export const KEEPER_TICK_MS = 1_000

/** How many members the keeper remembers to re-dial (the most recently seen are kept). */
export const KEEPER_MAX_REMEMBERED = 64

/** The keeper dials remembered members while this node has fewer peers than this (gossipsub's D is 6). */
export const KEEPER_TARGET_PEERS = 8

/** At start, how long the node waits for at least one bootstrap peer to answer. */
export const BOOTSTRAP_CHECK_TIMEOUT_MS = 5_000

/** At start, the pause between dials to a bootstrap peer that did not answer. */
export const BOOTSTRAP_RETRY_MS = 500

/**
 * A member connected but unheard for this long is hung up on and re-dialed
 * (the presence timeout, 7 s, plus a few heartbeats).
 */
export const KEEPER_SILENT_MS = 12_000

/**
 * Gossipsub scoring of our topics. Every buildhaus topic has a validator that
 * Rejects what no honest node would send (bad signatures, malformed entries
 * and heartbeats); each Reject counts against the peer that delivered it,
 * squared, times this weight. A peer's positive score is capped at 10, and
 * gossipsub ignores everything from a peer below -80 (graylisting): so a
 * handful of invalid messages cuts a peer off. Honest nodes only forward
 * messages they accepted themselves, so they never collect this penalty.
 */
export const INVALID_MESSAGE_WEIGHT = -10

/**
 * Per decay interval (1 s), the invalid-message count is multiplied by this:
 * a peer that sent 100 invalid messages is ignored for about half a minute,
 * then given another chance (and graylisted again at its first junk).
 */
export const INVALID_MESSAGE_DECAY = 0.9

/**
 * How often libp2p's connection monitor pings each connection (libp2p's
 * default is 10 s). Every ping opens a stream (multistream negotiation, a
 * Noise-encrypted round trip): in an idle mesh that was half of a node's CPU
 * once heartbeats and sync rounds were made cheap, and it grows with the
 * connections held. Gossip and presence traffic keep live connections busy
 * anyway; a dead one is found within a minute, and presence and the keeper
 * already notice a silent member on their own.
 */
export const PING_INTERVAL_MS = 60_000

/**
 * Dials the address book's gate lets through (one per address), over all
 * peers but bootstrap ones: at most DIAL_BURST at once, refilled at
 * DIALS_PER_SECOND. Healing after a partition needs a handful (the keeper
 * wants 8 peers); a node turned into a scanner would need thousands.
 */
export const DIAL_BURST = 32
export const DIALS_PER_SECOND = 2

/** Per peer: at most this many addresses dialed in any window of PEER_DIAL_WINDOW_MS (the keeper's back-off starts at 3 s). */
export const PEER_DIALS_PER_WINDOW = 4
export const PEER_DIAL_WINDOW_MS = 5_000

/** Peers the address book remembers (strangers we are not connected to are forgotten first), and addresses per peer. */
export const BOOK_MAX_PEERS = 1024
export const BOOK_MAX_ADDRESSES_PER_PEER = 8

/**
 * Gossipsub's mesh degree: D, and the bounds a heartbeat keeps each topic's
 * mesh between (Dlo, Dhi; Dout outbound peers, Dscore kept by score when
 * pruning). A message reaches a node about once from each mesh peer: the
 * first copy is the delivery, the others are duplicates that cost the same
 * Noise, Yamux and protobuf work and are then dropped. Measured at 50 nodes
 * (BENCHMARKS.md, "Mesh cost at 50 nodes"): gossipsub's defaults (6; 4–12)
 * let meshes grow to 7–8 peers, 6.2 copies of each entry per node; 4 (3–6)
 * holds them at 4–5 peers and 4.4 copies, with every entry still delivered to
 * every node. Sync repairs what a thinner mesh would lose.
 */
export const GOSSIP_MESH = { D: 4, Dlo: 3, Dhi: 6, Dout: 2, Dscore: 2 }

/**
 * Messages from this size on get an IDONTWANT to the mesh peers when they
 * first arrive (gossipsub 1.2). For a typical entry (0.5–2 KB) or heartbeat
 * the IDONTWANT costs about what the duplicate it may spare does: it is a
 * message of its own to every mesh peer. At 50 nodes gossipsub's default
 * (512 B) sent 3.6 of them per entry delivery and spared no measurable
 * duplicate; from 16 KiB (large jobs and results) they still save bytes.
 */
export const IDONTWANT_MIN_BYTES = 16 * 1024
