import { BuildhausError } from '../util/errors.js'

/** No environment of this name can be had here (not offered, no recipe, bad name). */
export class UnknownEnvironmentError extends BuildhausError {
  override name = 'UnknownEnvironmentError'
}

/** A job asked for packages the environment's archive does not have. */
export class UnknownPackagesError extends BuildhausError {
  override name = 'UnknownPackagesError'
  constructor (readonly packages: string[], message: string) {
    super(message)
  }
}

/** The archive an environment is made from could not be reached. */
export class ArchiveUnreachableError extends BuildhausError {
  override name = 'ArchiveUnreachableError'
}

/** Making an environment failed for another reason (a tool missing, no root, a failing step). */
export class EnvironmentCreationError extends BuildhausError {
  override name = 'EnvironmentCreationError'
}

/** An environment could not be removed: a build is using it. */
export class EnvironmentInUseError extends BuildhausError {
  override name = 'EnvironmentInUseError'
}

/** An image archive is malformed, unsupported or unsafe. */
export class ImageArchiveError extends BuildhausError {
  override name = 'ImageArchiveError'
}

/** A manifest does not have the form of docs/ENVIRONMENTS.md. */
export class InvalidManifestError extends BuildhausError {
  override name = 'InvalidManifestError'
}
