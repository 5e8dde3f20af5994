/** The sync protocol: heads exchange, then each side streams what the other lacks. See docs/FORMAT.md § Sync. */
export const SYNC_PROTOCOL = '/buildhaus/sync/1.0.0'

/**
 * The same, with digests of the heads first (summary.ts): two nodes that
 * hold the same heads exchange one SHA-256 each (~200 bytes a session with
 * the frames) instead of every head, and two that
 * differ in a few chains exchange only the heads of those chains' buckets.
 * Offered first; a peer that knows only 1.0.0 gets 1.0.0.
 */
export const SYNC_PROTOCOL_DIGEST = '/buildhaus/sync/1.1.0'

/** Buckets of the heads' digest (by the first byte of the author's key). */
export const SUMMARY_BUCKETS = 256

/**
 * A side sends its buckets' digests (256 × 32 bytes, ~17 KB as hex) only
 * from this many chains on: below it, its heads (~140 bytes each) cost
 * about as much.
 */
export const SUMMARY_BUCKETS_FROM_CHAINS = 256

/** Largest frame (after the length prefix): 16 entries of the maximum size fit, 512 typical ones. */
export const MAX_FRAME_BYTES = 1024 * 1024

/** Entries per `entries` frame. */
export const MAX_ENTRIES_PER_FRAME = 512

/** Entries one side sends in one session; past it the sender says `more` and the receiver comes back. */
export const MAX_ENTRIES_PER_SESSION = 25_000

/**
 * Bytes of entry lines one side sends in one session, likewise (25,000
 * typical entries are ~20 MB; without this bound 25,000 entries of 64 KiB
 * would be 1.6 GB). A receiver aborts a peer that sends more.
 */
export const MAX_BYTES_PER_SESSION = 32 * 1024 * 1024

/** Heads per `heads` frame, and in total (set reconciliation is the known next step for more authors). */
export const MAX_HEADS_PER_FRAME = 4096
export const MAX_HEADS = 65_536

/** Fork proofs accepted in one session. */
export const MAX_FORK_PROOFS_PER_SESSION = 256

/** A frame must arrive within this long of the previous one. */
export const FRAME_TIMEOUT_MS = 10_000

/** A whole session must finish within this long. */
export const SESSION_TIMEOUT_MS = 120_000

/** Opening the sync stream to a peer. */
export const DIAL_TIMEOUT_MS = 10_000

/** Anti-entropy round, ±20 % jitter. */
export const SYNC_INTERVAL_MS = 10_000

/**
 * Connected peers one anti-entropy round syncs with, chosen at random. Gossip
 * carries entries at once and sync only repairs what it lost, so a few
 * partners a round spread a repair through the mesh in a few rounds
 * (epidemic anti-entropy), where a session with every peer cost each node
 * O(peers) sessions of O(authors) heads every round.
 */
export const SYNC_PEERS_PER_ROUND = 2

/** Sessions running at once (inbound and outbound). */
export const MAX_CONCURRENT_SESSIONS = 8

/**
 * Sessions one peer may have open to us at once, over both protocols (a
 * full session and one limited to its own chain, at its start): libp2p's
 * per-protocol stream limit would let it hold two of each.
 */
export const MAX_INBOUND_SESSIONS_PER_PEER = 2

/** Sessions with one peer per round before waiting for the next interval, when it keeps saying `more`. */
export const MAX_FOLLOW_UP_SESSIONS = 20

/** Entry frames being verified/stored at once per session: overlaps parsing, verifying and writing. */
export const INGEST_PIPELINE_DEPTH = 3

/** Unread bytes buffered before the stream is paused (flow control). */
export const READ_HIGH_WATER_BYTES = 2 * 1024 * 1024

/**
 * What libp2p may buffer for a paused stream before resetting it: above the
 * muxer's largest window (yamux: 16 MiB), so only a sender ignoring flow
 * control hits it.
 */
export const MAX_STREAM_READ_BUFFER_BYTES = 20 * 1024 * 1024
