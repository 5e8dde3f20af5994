/** Each new entry, as its canonical line (UTF-8), the moment its author appends it. */
export const ENTRIES_TOPIC = 'buildhaus/entries/1'

/** Equivocation proofs: two conflicting entry lines separated by one newline. */
export const FORKS_TOPIC = 'buildhaus/forks/1'

/** Entries received by gossip are stored in batches of at most this many (one fsync each). */
export const MAX_GOSSIP_INGEST_BATCH = 256

/** Entries waiting to be stored; beyond it new ones are dropped (sync fetches them later)… */
export const MAX_GOSSIP_BACKLOG = 4096

/** …and at most this many bytes of them. */
export const MAX_GOSSIP_BACKLOG_BYTES = 16 * 1024 * 1024

/**
 * This node's own entries waiting to be published (paced to the quota its
 * peers hold it to); beyond it the oldest are not gossiped (sync carries them).
 */
export const MAX_OUTBOX = 4096

/** …and at most this many bytes of them. */
export const MAX_OUTBOX_BYTES = 16 * 1024 * 1024

/** Fork proofs learnt by gossip remembered so they are not published again (the oldest are forgotten). */
export const MAX_REMEMBERED_GOSSIP_FORKS = 4096
