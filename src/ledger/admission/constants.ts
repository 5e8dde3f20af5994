/**
 * Every number of the ledger's quotas, in one place (docs/SECURITY.md § At
 * the door explains each; docs/FORMAT.md §10 says what a peer sees).
 *
 * A quota is a token bucket: `entries` and `bytes` are what may arrive at
 * once (the bucket's size), `entriesPerSecond` and `bytesPerSecond` how fast
 * it refills. An entry costs one entry and its line's bytes from every bucket
 * that applies to it: its author's, and for a stranger's entry also the one
 * all strangers share. Gossip and sync draw on the same buckets; a node's own
 * entries never do (and it publishes them no faster than its peers take them).
 */

export interface Quota {
  /** Entries that may arrive at once. */
  entries: number
  entriesPerSecond: number
  /** Bytes of entry lines that may arrive at once. */
  bytes: number
  bytesPerSecond: number
}

const KiB = 1024
const MiB = 1024 * KiB

/**
 * One member's entries (the standing hook says who is a member). A busy
 * builder writes two entries per build (claim, result, ~0.5 and ~1.5 KB):
 * 32 a second is sixteen builds a second, sustained.
 */
export const MEMBER_QUOTA: Quota = { entries: 4096, entriesPerSecond: 32, bytes: 32 * MiB, bytesPerSecond: 256 * KiB }

/**
 * One stranger's entries. A submitter's burst of a few hundred jobs, or a
 * builder's steady trickle, fits; a flood from one key does not.
 */
export const STRANGER_QUOTA: Quota = { entries: 512, entriesPerSecond: 4, bytes: 4 * MiB, bytesPerSecond: 32 * KiB }

/**
 * All strangers' entries together. Fresh keys cost nothing, so this is what
 * bounds a flood from many of them: the log grows by strangers at most
 * 128 KiB/s (450 MiB an hour) after a first 8 MiB, whatever they do. Honest
 * strangers share it with a flooder (members do not): that is the price of an
 * open door, and why membership matters.
 */
export const ALL_STRANGERS_QUOTA: Quota = { entries: 2048, entriesPerSecond: 32, bytes: 8 * MiB, bytesPerSecond: 128 * KiB }

/**
 * How much more than an honest relay can possibly forward a gossip peer may
 * deliver before it is penalised. An honest node forwards only entries it
 * accepted itself, under the same quotas: so in any stretch of time it
 * forwards strangers' entries within ALL_STRANGERS_QUOTA, plus its own within
 * STRANGER_QUOTA. A peer delivering more than RELAY_TOLERANCE times that
 * cannot be an honest relay; the slack covers network jitter and members not
 * yet known as such on both sides.
 */
export const RELAY_TOLERANCE = 2

/** The bucket each gossip peer's deliveries of strangers' entries are counted against (see RELAY_TOLERANCE). */
export const RELAY_QUOTA: Quota = {
  entries: RELAY_TOLERANCE * (ALL_STRANGERS_QUOTA.entries + STRANGER_QUOTA.entries),
  entriesPerSecond: RELAY_TOLERANCE * (ALL_STRANGERS_QUOTA.entriesPerSecond + STRANGER_QUOTA.entriesPerSecond),
  bytes: RELAY_TOLERANCE * (ALL_STRANGERS_QUOTA.bytes + STRANGER_QUOTA.bytes),
  bytesPerSecond: RELAY_TOLERANCE * (ALL_STRANGERS_QUOTA.bytesPerSecond + STRANGER_QUOTA.bytesPerSecond)
}

/**
 * Buckets kept in memory (authors and peers). A full bucket is the same as
 * none, so full ones are dropped first; past this many, the least recently
 * used go too (its author then starts again from a full bucket: at worst one
 * more burst from a key that stopped for long enough to be forgotten).
 */
export const MAX_TRACKED_BUCKETS = 16_384
