/** Bounds of fetching upstream releases: every read a watch causes is bounded in bytes and time. */

/** One HTTP request: connect, headers and body. */
export const HTTP_TIMEOUT_MS = 60_000
/** Redirects followed (each target checked again). */
export const MAX_REDIRECTS = 5
/** A registry's document about one package (npm packument, PyPI JSON). */
export const MAX_METADATA_BYTES = 32 * 1024 * 1024
/** Debian's InRelease and a .dsc. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024
/** A suite's Sources.gz (bookworm main: about 13 MB). */
export const MAX_SOURCES_INDEX_BYTES = 64 * 1024 * 1024
/** One release's files in all (as a builder accepts a source: 256 MiB). */
export const MAX_RELEASE_BYTES = 256 * 1024 * 1024
/** Files and directories a release may unpack to. */
export const MAX_RELEASE_FILES = 100_000
/** Releases (tags, versions) one listing may hold; beyond it the newest are kept. */
export const MAX_RELEASES_LISTED = 10_000
/** A git command (ls-remote, a shallow clone of one tag). */
export const GIT_TIMEOUT_MS = 120_000
/** What a git command may print before it is stopped. */
export const MAX_GIT_OUTPUT_BYTES = 16 * 1024 * 1024
