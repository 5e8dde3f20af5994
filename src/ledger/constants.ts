/** Version of the entry format; the `v` field of every entry. */
export const ENTRY_FORMAT_VERSION = 1

/** Upper bound on one entry's canonical signed JSON, in bytes. */
export const MAX_ENTRY_BYTES = 64 * 1024

/**
 * Signatures are over this ASCII prefix followed by the 32 raw bytes of the
 * entry id, so a buildhaus signature can never be replayed as any other
 * protocol's (or another format version's) signature.
 */
export const SIGNATURE_DOMAIN = 'buildhaus-entry-v1\n'

/** Entry types are short lower-case words. */
export const ENTRY_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,31}$/

/** Deepest nesting of arrays and objects inside a body (the body itself is depth 1). */
export const MAX_BODY_DEPTH = 32

/** Out-of-order entries waiting for their predecessors, at most this many… */
export const DEFAULT_PENDING_LIMIT = 10_000

/** …and at most this many bytes of entry lines; the oldest are dropped first (sync fetches them again). */
export const DEFAULT_PENDING_BYTES = 32 * 1024 * 1024

/**
 * Fork evidence kept per equivocating author: the first proof is what matters;
 * a few more document the extent, and the cap stops a forking key from
 * filling the disk with conflicting entries.
 */
export const MAX_FORK_SEQS_PER_AUTHOR = 8
