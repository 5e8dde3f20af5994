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

/**
 * The job is not known to this node. Its name is `JobNotFound` (not the
 * class's): the API has sent that name for an unknown job since 0.1 and
 * clients match on it.
 */
export class JobNotFoundError extends BuildhausError {
  override name = 'JobNotFound'
}

/** Only the node that submitted a job (its key wrote the job entry) may cancel it. */
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
