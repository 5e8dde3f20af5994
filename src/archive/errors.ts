import { BuildhausError } from '../util/errors.js'

/** Why an archive was refused. Stable strings: callers and tests match on them. */
export type UnsafeArchiveReason =
  | 'absolute-path'
  | 'parent-path'
  | 'link-outside'
  | 'special-file'
  | 'too-many-files'
  | 'too-large'
  | 'bad-name'
  | 'not-a-tarball'

/**
 * A tarball was refused while unpacking. `entry` names the offending member
 * when there is one. Whatever was unpacked before the refusal stays inside
 * the destination, which the caller should discard.
 */
export class UnsafeArchiveError extends BuildhausError {
  override name = 'UnsafeArchiveError'
  readonly reason: UnsafeArchiveReason
  readonly entry: string | undefined

  constructor (reason: UnsafeArchiveReason, message: string, entry?: string, options?: ErrorOptions) {
    super(message, options)
    this.reason = reason
    this.entry = entry
  }
}

/** A source directory is over the size or file-count bound for packing. */
export class SourceTooLargeError extends BuildhausError {
  override name = 'SourceTooLargeError'
  readonly size: number
  readonly limit: number
  readonly unit: 'bytes' | 'files'

  constructor (size: number, limit: number, unit: 'bytes' | 'files') {
    super(unit === 'bytes'
      ? `the source is ${size} bytes, over the limit of ${limit} bytes; leave build outputs and large data out of the source directory (or exclude them)`
      : `the source has ${size} entries, over the limit of ${limit}; leave build outputs and dependencies out of the source directory (or exclude them)`)
    this.size = size
    this.limit = limit
    this.unit = unit
  }
}

/** A source directory holds something that cannot be packed safely (a link leaving the tree, a device, a fifo, a socket). */
export class UnsafeSourceError extends BuildhausError {
  override name = 'UnsafeSourceError'
  readonly path: string

  constructor (path: string, message: string) {
    super(message)
    this.path = path
  }
}
