import { BuildhausError, EnvironmentError } from '../util/errors.js'

/** The API token file is missing, unreadable or readable by others. */
export class TokenFileError extends BuildhausError {
  override name = 'TokenFileError'
}

/** Another live node already runs in this home. */
export class NodeAlreadyRunningError extends EnvironmentError {
  override name = 'NodeAlreadyRunningError'
}

/** A CLI command found no running node to talk to (no api.json, stale api.json, connection refused). */
export class NodeNotRunningError extends BuildhausError {
  override name = 'NodeNotRunningError'
}

/** The node's API answered with an error, or with something that is not buildhaus's API. */
export class ApiRequestError extends BuildhausError {
  override name = 'ApiRequestError'
  /** HTTP status, when there was a response. */
  readonly status?: number
  /** The `error.name` the node sent, if any. */
  readonly remoteName?: string

  constructor (message: string, options: ErrorOptions & { status?: number, remoteName?: string } = {}) {
    super(message, options)
    if (options.status !== undefined) this.status = options.status
    if (options.remoteName !== undefined) this.remoteName = options.remoteName
  }
}

/** Only a watch's author may remove it. */
export class NotWatchAuthorError extends BuildhausError {
  override name = 'NotWatchAuthorError'
}

/** A job that is not verified under the user's policy, or an artifact whose bytes are wrong. */
export class NotVerifiedError extends BuildhausError {
  override name = 'NotVerifiedError'
}
