/**
 * Bounds of the membership layer: the mesh definition file and the vouches
 * that admit keys. Every number a reader may need to check is here.
 */

/** The only version of the mesh definition file so far. */
export const MESH_FILE_VERSION = 1
/** The file a node reads from its home when no `--mesh` is given. */
export const MESH_FILE_NAME = 'mesh.json'
/** A mesh file is read whole; anything larger is refused before parsing. */
export const MAX_MESH_FILE_BYTES = 64 * 1024
/** A mesh's name: a short word people recognise, e.g. `buildhaus-public`, `acme-lab`. */
export const MAX_MESH_NAME_LENGTH = 64
export const MESH_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/
/** Founders listed in one mesh file. */
export const MAX_FOUNDERS = 256
/** Vouches a key needs to be admitted: 1 .. MAX_ADMIT. */
export const MAX_ADMIT = 16
/** The admit count `mesh init` writes when none is given. */
export const DEFAULT_ADMIT = 2

/**
 * Only an author's first MAX_VOUCH_TARGETS distinct keys (by the seq of its
 * first vouch or unvouch naming each) count: one key cannot fill a node's
 * memory with vouches for a million throwaway keys. Entries of one chain
 * arrive in seq order, so a live index and the pure fold agree on which.
 */
export const MAX_VOUCH_TARGETS = 1024

/** The entry types this layer defines. */
export const VOUCH_TYPE = 'vouch'
export const UNVOUCH_TYPE = 'unvouch'
/** The ledger's type by which an author retires its key (defined by the jobs layer's table). */
export const REVOKE_TYPE = 'revoke'
