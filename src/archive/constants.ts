/**
 * The largest job source, 256 MiB: what `submit` and a watch pack (the
 * files' bytes), what the API accepts as an upload and a builder fetches
 * (the packed archive), and what a watch's upstream release may hold. One
 * number, so a source one part accepts is never refused by the next.
 */
export const MAX_SOURCE_BYTES = 256 * 1024 * 1024
