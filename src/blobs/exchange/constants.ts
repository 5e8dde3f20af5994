/** The blob fetch protocol: one request, one header, then the blob's bytes. */
export const PROTOCOL = '/buildhaus/blob/1.0.0'

/** Largest request frame accepted (a JSON object naming one hash). */
export const MAX_REQUEST_BYTES = 1024

/** Largest response header frame accepted. */
export const MAX_HEADER_BYTES = 1024

/** Size of the data frames a server sends. */
export const DATA_FRAME_BYTES = 64 * 1024

/** Largest frame a client accepts after the header; a bigger length prefix aborts the stream. */
export const MAX_DATA_FRAME_BYTES = 256 * 1024

/** Bound on a fetched blob when the caller gives none: above any source tarball or artifact we expect. */
export const DEFAULT_MAX_BLOB_BYTES = 2 * 1024 * 1024 * 1024

/** Client: dialling, sending the request and receiving the header from one peer. */
export const HEADER_TIMEOUT_MS = 10_000

/** Either side: longest silence between two frames before the peer counts as stalled. */
export const CHUNK_TIMEOUT_MS = 10_000

/** Client: one peer's whole transfer (a 2 GiB blob at ~4 MB/s fits). */
export const FETCH_TIMEOUT_MS = 10 * 60_000

/** Server: time for a request frame to arrive once a stream opens. */
export const REQUEST_TIMEOUT_MS = 10_000

/** Server: one whole upload. */
export const SERVE_TIMEOUT_MS = 10 * 60_000

/** Server: uploads at once across all peers; beyond it, requests are answered "busy". */
export const MAX_CONCURRENT_SERVES = 16

/** Per connection: streams of this protocol open at once in each direction. */
export const MAX_STREAMS_PER_CONNECTION = 8

/** Client: peers asked at once by default (1 = strictly in preference order). */
export const DEFAULT_FAN_OUT = 1

/** Client: the most peers asked at once, whatever the caller asks. */
export const MAX_FAN_OUT = 4

/**
 * Client read side: pause the stream when this many received bytes wait to be
 * written, resume below the low mark. libp2p's own iterator never pauses.
 */
export const READ_HIGH_WATER_BYTES = 1024 * 1024
export const READ_LOW_WATER_BYTES = 256 * 1024

/**
 * Bytes a paused stream may buffer before libp2p resets it. Yamux lets a
 * sender run up to its window ahead (16 MiB at most), so it must exceed that.
 */
export const PAUSED_READ_BUFFER_BYTES = 20 * 1024 * 1024

/** Server write side: wait for the peer to take bytes while more than this many are queued. */
export const WRITE_HIGH_WATER_BYTES = 1024 * 1024

/**
 * Over a relayed connection (which a relay resets after a number of bytes),
 * a blob is attempted only if its size, plus this share for framing and
 * encryption and the slack below, fits what the connection has left.
 */
export const RELAY_OVERHEAD_RATIO = 0.02
export const RELAY_OVERHEAD_BYTES = 64 * 1024
