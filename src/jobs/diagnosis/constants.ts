/** Whole comparison, diffoscope or built-in: past it, what was found so far is reported. */
export const DEFAULT_TIMEOUT_MS = 120_000

/** Bound on the report text (it is published as a blob). */
export const DEFAULT_MAX_REPORT_BYTES = 256 * 1024

/** Differing regions shown as hex dumps per file pair (all are counted). */
export const MAX_REGIONS_SHOWN = 8

/** Hex dump rows (16 bytes each) shown per region, context included. */
export const MAX_ROWS_PER_REGION = 6

/** Equal bytes this close together still belong to one differing region. */
export const REGION_MERGE_GAP = 8

/** Files up to this size that look like text get a line diff. */
export const MAX_TEXT_DIFF_BYTES = 8 * 1024 * 1024

/** Line diffs with more changed lines than this fall back to the byte view. */
export const MAX_LINE_EDITS = 2_000

/** Hunks of a line diff shown (all are counted). */
export const MAX_HUNKS_SHOWN = 10

/** Context lines around each hunk. */
export const HUNK_CONTEXT_LINES = 3

/** Archive members compared in detail (all are listed). */
export const MAX_MEMBERS_DETAILED = 5

/** Bytes of one member extracted for a detailed comparison; beyond it only the prefix is compared. */
export const MAX_MEMBER_EXTRACT_BYTES = 64 * 1024 * 1024

/** Decompressed bytes read from one gzip stream (a bound against gzip bombs). */
export const MAX_DECOMPRESSED_BYTES = 2 * 1024 * 1024 * 1024

/** Members listed per archive; beyond it the listing stops. */
export const MAX_ARCHIVE_MEMBERS = 100_000

/** diffoscope's stderr kept for the error message. */
export const MAX_TOOL_STDERR_BYTES = 8 * 1024

/** Bound on diffoscope's private /tmp, where it unpacks archives (a tmpfs: memory while in use). */
export const DIFFOSCOPE_TMP_BYTES = 1024 * 1024 * 1024

/**
 * Data (heap and private mappings: RLIMIT_DATA) each process in diffoscope's
 * sandbox may take: diffoscope and every unpacker it starts. A crafted
 * artifact that makes one of them allocate without end fails there ("Out of
 * memory") instead of taking the node's host down; with the /tmp bound, a
 * diagnosis holds at most a few GiB however hostile its inputs.
 */
export const DIFFOSCOPE_DATA_BYTES = 2 * 1024 * 1024 * 1024
