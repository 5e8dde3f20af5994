import { BuildhausError } from '../util/errors.js'

/** The key file is missing, unreadable, too open, or not an Ed25519 PKCS#8 key. */
export class KeyFileError extends BuildhausError {
  override name = 'KeyFileError'
}

/** A key file already exists where a new one was to be written. */
export class KeyExistsError extends BuildhausError {
  override name = 'KeyExistsError'
}
