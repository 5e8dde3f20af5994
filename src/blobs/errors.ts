import { BuildhausError } from '../util/errors.js'

/** The blob is not in the store (never stored, evicted, or found corrupt and removed). */
export class BlobNotFoundError extends BuildhausError {
  override name = 'BlobNotFoundError'
  readonly hash: string

  constructor (hash: string, message = `blob ${hash} is not in the store; fetch it from a peer that has it`) {
    super(message)
    this.hash = hash
  }
}

/** A blob is (or was announced as) larger than the bound the caller or the store allows. */
export class BlobTooLargeError extends BuildhausError {
  override name = 'BlobTooLargeError'
}

/** A blob is larger than what a relayed connection may still carry: it needs a direct connection. */
export class BlobOverRelayLimitError extends BuildhausError {
  override name = 'BlobOverRelayLimitError'
}

/** Bytes offered for a blob do not hash to the blob's name. */
export class BlobHashMismatchError extends BuildhausError {
  override name = 'BlobHashMismatchError'
  readonly expected: string
  readonly actual: string

  constructor (expected: string, actual: string, size: number) {
    super(`the ${size} bytes received hash to ${actual}, not to the requested blob ${expected}; they were discarded`)
    this.expected = expected
    this.actual = actual
  }
}

/** What one peer answered (or failed to) when asked for a blob. */
export interface FetchAttempt {
  peer: string
  reason: string
}

/** No candidate peer delivered the blob. `attempts` says what each one did. */
export class BlobUnavailableError extends BuildhausError {
  override name = 'BlobUnavailableError'
  readonly hash: string
  readonly attempts: FetchAttempt[]

  constructor (hash: string, attempts: FetchAttempt[]) {
    const said = attempts.length === 0
      ? 'no peer was given to ask'
      : attempts.map((a) => `${a.peer}: ${a.reason}`).join('; ')
    super(`could not fetch blob ${hash} (${said}); try again once a peer that has it is connected`)
    this.hash = hash
    this.attempts = attempts
  }
}
