/** The protocol: a peer asks whom this node can introduce it to; the answer is peers it is connected to, with addresses it saw itself. */
export const PROTOCOL = '/buildhaus/introductions/1.0.0'

/** The request is one small frame (`{"v":1}`). */
export const MAX_REQUEST_BYTES = 256
/** The answer: at most MAX_INTRODUCED peers with at most MAX_ADDRESSES_EACH addresses of at most MAX_ADDRESS_LENGTH characters. */
export const MAX_INTRODUCED = 32
export const MAX_ADDRESSES_EACH = 8
export const MAX_ADDRESS_LENGTH = 256
export const MAX_RESPONSE_BYTES = 96 * 1024

/** A whole exchange, either side. */
export const EXCHANGE_TIMEOUT_MS = 5_000
/** A node asks one introducer at most this often (it asks only while it has fewer peers than it wants). */
export const ASK_INTERVAL_MS = 10_000
/** A node answers one peer at most this often; a peer asking faster gets its stream reset. */
export const SERVE_INTERVAL_MS = 1_000
/** Peers whose last question is remembered (to hold them to SERVE_INTERVAL_MS); the oldest are forgotten first. */
export const MAX_ASKERS_REMEMBERED = 4096
