/**
 * Live logs: a running build's output, pulled from the builder while it runs.
 * Nothing here is logged or gossiped: a follower dials the builder that
 * claimed the slot and reads what it prints. A log nobody watches costs nothing.
 */

/** The follow protocol: one request, one header, then log frames until the run ends. */
export const LIVE_LOG_PROTOCOL = '/buildhaus/livelog/1.0.0'

/** Largest request frame (a job id, a selector, an offset). */
export const MAX_REQUEST_BYTES = 1024

/** A frame of log text carries at most this many characters (longer output is split). */
export const MAX_FRAME_CHARS = 16 * 1024
/** Largest frame a follower accepts (JSON around MAX_FRAME_CHARS characters of up to 3 UTF-8 bytes, escaped). */
export const MAX_FRAME_BYTES = 8 * MAX_FRAME_CHARS

/** Each slot keeps the last this many characters of its output for followers who arrive late. */
export const BACKLOG_CHARS = 256 * 1024

/** An ended run's backlog is kept this long, so a follower that connects just then sees the end. */
export const ENDED_LINGER_MS = 60_000

/** Builder: follow streams served at once, across all peers; beyond it a request is answered "busy". */
export const MAX_SERVED_FOLLOWS = 32
/** Builder: follow streams one peer may hold at once. */
export const MAX_FOLLOWS_PER_PEER = 4
/** Per connection: streams of this protocol open at once in each direction. */
export const MAX_STREAMS_PER_CONNECTION = MAX_FOLLOWS_PER_PEER

/** Builder: a ping frame when nothing else was sent for this long, so the follower can tell a quiet build from a dead peer. */
export const PING_INTERVAL_MS = 15_000
/** Follower: silence after which the builder counts as gone. */
export const SILENCE_TIMEOUT_MS = 45_000
/** Follower: dialling, sending the request and receiving the header. */
export const HEADER_TIMEOUT_MS = 10_000
/** Builder: time for a request to arrive once a stream opens. */
export const REQUEST_TIMEOUT_MS = 10_000
/** Builder: bytes queued on one stream before it waits for the follower to read. */
export const WRITE_HIGH_WATER_BYTES = 256 * 1024

/**
 * Follower: what one builder's live log of one slot may deliver. A claimant
 * that prints faster than RATE_CHARS_PER_S (with a burst of BURST_CHARS) or
 * more than MAX_FOLLOW_CHARS in all is cut off with a note: the whole log is
 * in its result anyway. These bound what a stranger who claims a slot can
 * push through this node to its API clients.
 */
export const RATE_CHARS_PER_S = 64 * 1024
export const BURST_CHARS = 256 * 1024
export const MAX_FOLLOW_CHARS = 8 * 1024 * 1024

/** Follower: remote builders followed at once, across all jobs, and per job. */
export const MAX_FOLLOWS = 32
export const MAX_FOLLOWS_PER_JOB = 8

/** Slots (local runs and remote follows) a hub keeps at once; the oldest ended ones go first. */
export const MAX_HUB_SLOTS = 256
