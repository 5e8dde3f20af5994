import { DEFAULT_LIMITS } from '../sandbox/limits.js'

/**
 * Bounds and timings of the jobs layer. Every array and string that enters a
 * signed job-related entry has a bound here; the ledger's MAX_ENTRY_BYTES
 * (64 KiB for the whole entry) is the final cap on top of them.
 */

/** The file in a submitted directory that describes the job. */
export const SPEC_FILE_NAME = 'buildhaus.json'
/** buildhaus.json is read whole; anything larger is refused before parsing. */
export const MAX_SPEC_FILE_BYTES = 64 * 1024

export const MAX_JOB_NAME_LENGTH = 128
export const MAX_STEPS = 32
export const MAX_STEP_NAME_LENGTH = 64
/** One step's shell command. */
export const MAX_STEP_RUN_LENGTH = 4096
export const MAX_PLATFORMS = 16
export const MAX_LABELS_PER_SELECTOR = 8
export const MAX_LABEL_LENGTH = 32
/** Lower-case words such as `linux-x64`, `debian-12`, `py3.12`: never `+`, which joins labels. */
export const LABEL_PATTERN = /^[a-z0-9][a-z0-9._-]*$/
/** A selector string is at most this long (labels joined by `+`). */
export const MAX_SELECTOR_LENGTH = MAX_LABELS_PER_SELECTOR * (MAX_LABEL_LENGTH + 1)

export const DEFAULT_REPLICAS = 2
/** More replicas buy little once a handful of independent builders agree. */
export const MAX_REPLICAS = 7

/** A job's wall-clock limit, in seconds: 1 s .. 24 h. */
export const MIN_TIMEOUT_S = 1
export const MAX_TIMEOUT_S = 24 * 60 * 60
/**
 * A job that names no timeout gets this one, written into its entry: 30
 * minutes, the sandbox's own default wall-clock limit, so one number says how
 * long a build may take when nobody said. (GitHub Actions gives a job 6 hours,
 * GitLab 1 hour, Buildbot 20 minutes of silence; a volunteer's build slot
 * should not be held for hours by a forgotten loop.)
 */
export const DEFAULT_TIMEOUT_S = DEFAULT_LIMITS.wallSeconds

export const MAX_GLOBS = 64
export const MAX_GLOB_LENGTH = 256

/** Resource limits a job may ask for (the volunteer's policy may grant less). */
export const MAX_MEMORY_MB = 1024 * 1024
export const MAX_DISK_MB = 16 * 1024 * 1024
export const MAX_CPU_SECONDS = 7 * 24 * 60 * 60
export const MAX_PROCESSES = 65_536

/** Free text in entries: reasons, summaries, warnings. */
export const MAX_REASON_LENGTH = 1024
export const MAX_SUMMARY_LENGTH = 2048

/** Results. */
export const MAX_RESULT_ARTIFACTS = 256
export const MAX_PATH_LENGTH = 512
export const MAX_SIGNAL_LENGTH = 16
export const MAX_ENV_FIELD_LENGTH = 256
export const MAX_ENV_TOOLS = 32
export const MAX_TOOL_NAME_LENGTH = 64

/** Environments: the versions a result records (the job's packages and a few toolchain ones), each version's length. */
export const MAX_RESULT_PACKAGES = 96
export const MAX_PACKAGE_VERSION_LENGTH = 128

/** Diagnoses. */
export const MAX_DIAGNOSIS_BUILDERS = 16
export const MAX_DIAGNOSIS_FILES = 256

/**
 * How long a claim holds its slot without help: a claimant writes
 * `lease = now + CLAIM_LEASE_MS + its heartbeat interval` (a run's start
 * publishes no heartbeat, so the first one listing it may come an interval
 * later; JobService.leaseMs). While it stays live and lists the slot as
 * running in its heartbeats the claim stays valid past the lease (implicit
 * renewal); once the lease has passed and the claimant is silent or no longer
 * lists it, the slot goes to the next node.
 */
export const CLAIM_LEASE_MS = 15_000

/**
 * The margin of the protocol's maximum hold: a builder's claims on a slot
 * hold it at most the job's timeout plus this long after the `time` of its
 * first claim there, whatever lease they name, however often it claims again
 * and whatever its heartbeats say (see maxClaimHoldMs). Covers fetching the
 * source and unpacking before the job's clock starts.
 */
export const CLAIM_OVERRUN_MS = 10 * 60_000

/** The longest a builder's claims hold one slot of a job with this timeout (seconds), from its first claim's time. */
export function maxClaimHoldMs (timeoutS: number): number {
  return timeoutS * 1000 + CLAIM_OVERRUN_MS
}

/**
 * A live member whose heartbeat lists a slot as running before its claim
 * arrived holds a place in it, but only this long after the slot last
 * changed: the claim is written as the run starts and follows within
 * moments, so a heartbeat naming a slot it never claims holds nothing for long.
 */
export const HEARTBEAT_HOLD_MS = CLAIM_LEASE_MS

/**
 * A slot with missing replicas and no change for this long designates one
 * more node, and another each further period (at most twice the missing
 * count in all): a designated node that is live and free but never claims
 * (it has not synced the job yet, or runs a faulty version) cannot stall a
 * slot forever. Twice the lease, so a healthy node always claims first.
 */
export const CLAIM_ESCALATE_MS = 2 * CLAIM_LEASE_MS

/**
 * The job service's in-memory index (src/jobs/service/job-index.ts) holds at
 * most this many bytes of entry lines (a decoded entry takes about three
 * times its line on the heap, so ~100 MB)…
 */
export const MAX_INDEX_BYTES = 32 * 1024 * 1024

/** …and at most this many jobs. Past either, the oldest decided jobs leave memory first (the log keeps them; `GET /api/jobs/<id>` reads them back). */
export const MAX_INDEX_JOBS = 20_000

/** Entries naming a job the index does not hold, kept until it arrives: at most this many… */
export const MAX_ORPHANS = 10_000

/** …and this many bytes (the oldest job's waiting entries go first; the log keeps them). */
export const MAX_ORPHAN_BYTES = 8 * 1024 * 1024

/** Authors whose last claim or result time the service remembers (for escalation), the most recent kept. */
export const MAX_ACTIVITY_AUTHORS = 16_384
/** Upstream URLs (watches, a job's upstream): at most this many characters. */
export const MAX_URL_LENGTH = 1024
/** A release's name (a version or a tag): at most this many characters. */
export const MAX_RELEASE_LENGTH = 128

/** Watches (src/jobs/watches.ts). */
/** A stranger may keep this many watches; later ones (in fold order) are ignored. */
export const MAX_WATCHES_PER_AUTHOR = 16
/** A node folds at most this many live watches; later ones are ignored. */
export const MAX_WATCHES = 1024
/** Seconds between polls a watch may ask for: 10 s .. 1 day (a node polls no more often than its own floor, 300 s by default). */
export const MIN_WATCH_INTERVAL_S = 10
export const MAX_WATCH_INTERVAL_S = 24 * 60 * 60
export const DEFAULT_WATCH_INTERVAL_S = 15 * 60
/** New releases one poll turns into jobs (oldest first); the rest wait for the next poll. */
export const MAX_NEW_RELEASES_PER_POLL = 3
/** A release name that may appear in a job (and its steps): versions and tags, nothing a shell would read as code. */
export const RELEASE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+~:@-]*$/

/**
 * At most this many (slot, candidate) pairs in the planner's ranking cache
 * (RankCache in rendezvous.ts): about 40 bytes each, 10 MiB at most; 1,000
 * open slots over 262 members, or 64 over 4,096.
 */
export const MAX_RANKED_ENTRIES = 1 << 18

/** What a watch follows: a git repository, an npm package, a PyPI project, a Debian source package. */
export const WATCH_KINDS = ['git', 'npm', 'pypi', 'debian'] as const
export type WatchKind = typeof WATCH_KINDS[number]
