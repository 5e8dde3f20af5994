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

/**
 * How far ahead of this node's own clock an entry's `time` or `clock` may be
 * (ms). An entry beyond it is refused *for now* (not stored, not forwarded,
 * nobody punished): once the receiver's clock has caught up, sync brings it
 * again and it is taken. So a chain whose author's clock runs more than this
 * far ahead is not heard until it is right, and no entry can carry the mesh's
 * clock further than this past real time. Ten minutes: volunteers' machines
 * drift by seconds when they keep time at all, by hours when they do not.
 */
export const MAX_FUTURE_MS = 10 * 60_000

/**
 * The hybrid logical clock (docs/FORMAT.md §5): a node's next entry gets
 * clock = max(its wall clock, the clock it adopted + 1, its own last + 1).
 * From an entry it stores it adopts at most this far past its own wall clock
 * (ms): an entry up to MAX_FUTURE_MS ahead is stored but does not drag this
 * node's entries along, and an honest node's entries stay within a receiver's
 * MAX_FUTURE_MS even when its peers' clocks run a little ahead.
 */
export const MAX_ADOPTED_AHEAD_MS = 60_000

/**
 * Chain heads a store keeps in memory (the most recently used; LevelDB holds
 * them all). ~250 bytes each: 16 MB. A head not at hand costs one LevelDB read.
 */
export const MAX_CACHED_HEADS = 65_536
