import { createHash } from 'node:crypto'
import { InvalidInputError } from '../util/errors.js'

const BLOB_HASH = /^[0-9a-f]{64}$/

/** A blob's name is the lower-case hex sha256 of its bytes: exactly 64 characters of [0-9a-f]. */
export function isBlobHash (value: unknown): value is string {
  return typeof value === 'string' && BLOB_HASH.test(value)
}

/** Throw InvalidInputError unless `value` is a blob hash; this is also what keeps hashes from ever naming a path outside the store. */
export function assertBlobHash (value: unknown): string {
  if (isBlobHash(value)) return value
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value
  throw new InvalidInputError(`${shown} is not a blob hash: expected 64 lower-case hex digits (a sha256)`)
}

/** sha256 (hex) of bytes held in memory. */
export function blobHashOf (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}
