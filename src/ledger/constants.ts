/** Version of the entry format; the `v` field of every entry. */
export const ENTRY_FORMAT_VERSION = 1

/** Upper bound on one entry's canonical signed JSON, in bytes. */
export const MAX_ENTRY_BYTES = 64 * 1024

/**
 * Signatures are over this ASCII prefix followed by the 32 raw bytes of the
 * entry id, so a buildhaus signature can never be replayed as any other
 * protocol's (or another format version's) signature.
 */
export const SIGNATURE_DOMAIN = 'buildhaus-entry-v1\n'

/** Entry types are short lower-case words. */
export const ENTRY_TYPE_PATTERN = /^[a-z][a-z0-9-]{0,31}$/
