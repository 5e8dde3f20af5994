import { BuildhausError } from '../util/errors.js'

/** An entry failed decoding or verification. `reason` is a short machine-friendly cause. */
export class InvalidEntryError extends BuildhausError {
  override name = 'InvalidEntryError'
  readonly reason: InvalidEntryReason

  constructor (reason: InvalidEntryReason, message: string) {
    super(message)
    this.reason = reason
  }
}

export type InvalidEntryReason =
  | 'too-large'
  | 'not-json'
  | 'not-canonical'
  | 'bad-shape'
  | 'unknown-type'
  | 'bad-body'
  | 'bad-signature'
