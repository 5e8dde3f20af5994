import { BuildhausError } from '../util/errors.js'

/** An upstream could not be read, or what it served does not check out. */
export class UpstreamError extends BuildhausError {
  override name = 'UpstreamError'
}

/** A watch names an address this node does not fetch (loopback, private, link-local…). */
export class ForbiddenAddressError extends UpstreamError {
  override name = 'ForbiddenAddressError'
}

/** What the upstream served does not match the digest it published. */
export class DigestMismatchError extends UpstreamError {
  override name = 'DigestMismatchError'
}
