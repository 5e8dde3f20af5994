/** Default TCP port of `buildhaus-node join` (documented in the README). */
export const DEFAULT_P2P_PORT = 4710

/** Default listen address of `buildhaus-node join`: every interface, the documented port. */
export const DEFAULT_LISTEN_ADDRESS = `/ip4/0.0.0.0/tcp/${DEFAULT_P2P_PORT}`

/** Largest gossip message accepted (an entry is at most 64 KiB; room for the envelope). */
export const MAX_GOSSIP_MESSAGE_BYTES = 128 * 1024

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
