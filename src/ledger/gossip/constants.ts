/**
 * Each new entry, as its canonical line (UTF-8), the moment its author appends it.
 * Version 2 since the `vouch` and `unvouch` types: a node that knows only the
 * types of version 1 would Reject them and cut off the peers that forward
 * them, so the two versions do not share a topic (sync skips types it does not
 * know, so it still works across versions).
 */
export const ENTRIES_TOPIC = 'buildhaus/entries/2'

/** Equivocation proofs: two conflicting entry lines separated by one newline. */
export const FORKS_TOPIC = 'buildhaus/forks/1'

/** Entries received by gossip are stored in batches of at most this many (one fsync each). */
export const MAX_GOSSIP_INGEST_BATCH = 256

/** Entries waiting to be stored; beyond it new ones are dropped (sync fetches them later). */
export const MAX_GOSSIP_BACKLOG = 4096
