import { UsageError } from '../util/errors.js'

/** A mesh definition file is missing, unreadable or malformed; the message names the file and the field. */
export class MeshFileError extends UsageError {
  override name = 'MeshFileError'
}
