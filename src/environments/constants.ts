/**
 * Bounds and names of the environments layer: named, content-addressed root
 * file systems that builds run in (see docs/ENVIRONMENTS.md).
 */

/** The name of "no environment": the host's own system directories, as the sandbox always had. */
export const HOST_ENVIRONMENT = 'host'

/** An environment's name is also a platform label: lower-case, no `+`. */
export const ENVIRONMENT_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/
export const MAX_ENVIRONMENT_NAME_LENGTH = 32

/**
 * A Debian package name (Debian Policy §5.6.1): lower-case letters, digits,
 * `+`, `-`, `.`, at least two characters, starting with a letter or digit.
 * Never starts with `-`, so a name can never be taken for an apt option.
 */
export const PACKAGE_NAME_PATTERN = /^[a-z0-9][a-z0-9+.-]+$/
export const MAX_PACKAGE_NAME_LENGTH = 100
/** Build dependencies one job may ask for. */
export const MAX_REQUESTED_PACKAGES = 64

/** The manifest's format version (its `v`). */
export const MANIFEST_VERSION = 1
/** Largest manifest read or accepted (a Debian root with 20,000 packages is about 700 KiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
export const MAX_MANIFEST_PACKAGES = 50_000
/** Free-text fields of a manifest (origin, date, suite…). */
export const MAX_MANIFEST_FIELD_LENGTH = 256

/** Largest package database (dpkg status, apk installed) read from a root. */
export const MAX_PACKAGE_DB_BYTES = 64 * 1024 * 1024
/** Largest small file (os-release, Release) read from a root. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024

/** How long making one environment may take before it is abandoned. */
export const CREATE_TIMEOUT_MS = 60 * 60_000
/** How long installing a job's packages may take. */
export const DERIVE_TIMEOUT_MS = 30 * 60_000

/**
 * How long a set of packages the archive did not have is refused without
 * asking it again (another copy of the base and `apt-get update` each time
 * otherwise). An upload to the archive within that time is seen an hour late.
 */
export const UNKNOWN_PACKAGES_TTL_MS = 60 * 60_000

/** Default bound of a node's environment cache (least recently used removed first). */
export const DEFAULT_ENVIRONMENT_CACHE_MB = 32 * 1024

/**
 * Bumped when what a recipe makes changes (other options, other steps): an
 * environment made by an older recipe is not reused for a name.
 */
export const RECIPE_VERSION = 1

/** Mount points every prepared root has, so that bubblewrap never has to create one in a read-only root. */
export const MOUNT_POINTS = ['build', 'tmp', 'var/tmp', 'dev', 'proc'] as const
/** Files bound over in the sandbox; created empty when the root lacks them. */
export const BOUND_FILES = ['etc/passwd', 'etc/group', 'etc/resolv.conf'] as const

/** Largest OCI image archive accepted for import, and largest unpacked root. */
export const MAX_IMAGE_ARCHIVE_BYTES = 8 * 1024 * 1024 * 1024
export const MAX_IMAGE_ROOT_BYTES = 32 * 1024 * 1024 * 1024
export const MAX_IMAGE_ENTRIES = 2_000_000
/** Largest JSON document (index, manifest, config) in an image archive. */
export const MAX_IMAGE_JSON_BYTES = 4 * 1024 * 1024
