import { BuildhausError, InvalidInputError, UsageError } from '../util/errors.js'

/** buildhaus.json (or a CLI override of it) is malformed; the message names the field and what is expected. */
export class JobSpecError extends UsageError {
  override name = 'JobSpecError'
}

/** A trust directory is missing, empty, or holds a file that is not a public key. */
export class TrustListError extends UsageError {
  override name = 'TrustListError'
}

/** A trust policy is malformed (e.g. a quorum that is not a positive integer). */
export class TrustPolicyError extends UsageError {
  override name = 'TrustPolicyError'
}

export class JobNotFoundError extends BuildhausError {
  override name = 'JobNotFoundError'
}

export class NotSubmitterError extends BuildhausError {
  override name = 'NotSubmitterError'
}

/** A submission names a source this node does not hold: it must be uploaded first. */
export class SourceNotFoundError extends BuildhausError {
  override name = 'SourceNotFoundError'
}

/** Raised inside a decompression stream that passed its bound. */
export class DecompressionLimitError extends InvalidInputError {
  override name = 'DecompressionLimitError'
}
