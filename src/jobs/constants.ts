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

/** Diagnoses. */
export const MAX_DIAGNOSIS_BUILDERS = 16
export const MAX_DIAGNOSIS_FILES = 256

/**
 * How long a claim holds its slot without help: a claimant writes
 * `lease = now + CLAIM_LEASE_MS`. While it stays live and lists the slot as
 * running in its heartbeats the claim stays valid past the lease (implicit
 * renewal); once the lease has passed and the claimant is silent or no longer
 * lists it, the slot goes to the next node.
 */
export const CLAIM_LEASE_MS = 15_000

/**
 * A claimant that still lists a slot as running this long after the job's own
 * timeout (counted from the lease) is stuck or lying: its claim stops holding
 * the slot. Covers fetching the source and unpacking before the clock starts.
 */
export const CLAIM_OVERRUN_MS = 10 * 60_000

/**
 * A slot with missing replicas and no change for this long designates one
 * more node, and another each further period (at most twice the missing
 * count in all): a designated node that is live and free but never claims
 * (it has not synced the job yet, or runs a faulty version) cannot stall a
 * slot forever. Twice the lease, so a healthy node always claims first.
 */
export const CLAIM_ESCALATE_MS = 2 * CLAIM_LEASE_MS
