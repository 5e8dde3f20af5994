/** The gossip topic of presence heartbeats; a change of meaning bumps the trailing version. */
export const PRESENCE_TOPIC = 'buildhaus/presence/1'

/** The `v` field of heartbeats on PRESENCE_TOPIC. */
export const HEARTBEAT_VERSION = 1

/** How often a node says it is alive. */
export const HEARTBEAT_INTERVAL_MS = 2_000

/** A member not heard from for this long has left (three missed heartbeats and some slack). */
export const PRESENCE_TIMEOUT_MS = 7_000
/**
 * Up to this many members the interval is HEARTBEAT_INTERVAL_MS; beyond, it
 * grows in proportion (50 members: 5 s, 100: 10 s), so that a node receives
 * about the same number of heartbeats a second however large the mesh:
 * every node hears every other, so a fixed interval costs each node O(N) and
 * the mesh O(N²) (at 50 nodes, 2 s heartbeats took most of 2 cores).
 */
export const MEMBERS_PER_BASE_INTERVAL = 20
/** The longest interval a node announces, and the longest a receiver believes. */
export const MAX_HEARTBEAT_INTERVAL_MS = 30_000
/** The shortest interval a receiver accepts in a heartbeat's `every`. */
export const MIN_HEARTBEAT_INTERVAL_MS = 100

/** How often departed members are looked for. */
export const SWEEP_INTERVAL_MS = 500

/** `update()` publishes at once, but never more often than this. */
export const MIN_PUBLISH_GAP_MS = 250

/** Largest heartbeat accepted, in bytes of JSON: a full one is about 5 KiB. */
export const MAX_HEARTBEAT_BYTES = 16 * 1024

export const MAX_PLATFORMS = 32
/** A heartbeat lists at most this many ready environments. */
export const MAX_ENVIRONMENTS = 32
export const MAX_LABEL_LENGTH = 64
/** A heartbeat lists at most this many running builds; a node with more lists the first ones. */
export const MAX_RUNNING = 64
export const MAX_SLOTS = 1024
export const MAX_VERSION_LENGTH = 64
export const MAX_API_URL_LENGTH = 256
/** A heartbeat announces at most this many listen addresses, each at most MAX_ADDRESS_LENGTH characters. */
export const MAX_ADDRESSES = 16
export const MAX_ADDRESS_LENGTH = 256

/** A platform label: `linux-x64`, `debian-12`, `ubuntu-24.04`. */
export const PLATFORM_LABEL_PATTERN = /^[a-z0-9][a-z0-9._-]*$/

/** `<job id>/<selector>`: 64 hex digits, then platform labels joined by `+`. */
export const RUNNING_ITEM_PATTERN = /^[0-9a-f]{64}\/[a-z0-9][a-z0-9._-]*(\+[a-z0-9][a-z0-9._-]*)*$/

/** How many departed senders' last sequence numbers are kept to refuse replays of their old heartbeats. */
export const MAX_REMEMBERED_SEQNOS = 4096

/**
 * The member table's bound: strangers (keys that are not members of the mesh)
 * hold at most MAX_PRESENCE_STRANGERS places of MAX_PRESENCE_MEMBERS. Keys are
 * free: without a bound, heartbeats from fresh keys (forwarded through one
 * connection, none of them ever connected) grow the table without end. A
 * stranger heard when the strangers' places are taken is not recorded and its
 * heartbeat not forwarded; a member heard when the table is full takes the
 * place of the stranger heard most recently. A heartbeat is at most
 * MAX_HEARTBEAT_BYTES (16 KiB): 4096 members are at most 64 MiB of heartbeats,
 * the strangers among them at most 16 MiB.
 */
export const MAX_PRESENCE_MEMBERS = 4096
export const MAX_PRESENCE_STRANGERS = 1024
