/**
 * Base class of every error buildhaus throws on purpose. `name` is stable and
 * is what callers and tests match on; `message` is one sentence a user can act on.
 */
export class BuildhausError extends Error {
  override name = 'BuildhausError'

  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** The user asked for something malformed (bad flag, bad file, bad value). CLI exit code 2. */
export class UsageError extends BuildhausError {
  override name = 'UsageError'
}

/** Something the user can fix in their environment (missing tool, port in use, bad permissions). */
export class EnvironmentError extends BuildhausError {
  override name = 'EnvironmentError'
}

/** Input from the network or a file failed validation. Never fatal to the node. */
export class InvalidInputError extends BuildhausError {
  override name = 'InvalidInputError'
}

/** A bounded operation ran past its deadline. */
export class DeadlineError extends BuildhausError {
  override name = 'DeadlineError'
}

/** Describe any thrown value in one line, for logs and CLI output. */
export function describeError (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/** A part of buildhaus loaded at its first use (src/util/lazy.ts) could not be loaded: the installation is incomplete. */
export class PartUnavailableError extends BuildhausError {
  override name = 'PartUnavailableError'
}
