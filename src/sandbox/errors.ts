import { BuildhausError } from '../util/errors.js'

export const BWRAP_INSTALL_HINT = 'install it (Debian/Ubuntu: `sudo apt-get install bubblewrap`, Fedora: `sudo dnf install bubblewrap`), or pass --sandbox=none to run builds unsandboxed (unsafe)'

/** The requested sandbox cannot run on this machine; the node must not build. */
export class SandboxUnavailableError extends BuildhausError {
  override name = 'SandboxUnavailableError'
}

/** The volunteer's policy file is unreadable or invalid. */
export class PolicyFileError extends BuildhausError {
  override name = 'PolicyFileError'
}

/** Part of a workspace could not be removed (the node's next start tries again). The message holds no host path. */
export class WorkspaceRemovalError extends BuildhausError {
  override name = 'WorkspaceRemovalError'
}

/**
 * A run failed for a reason of the node's own (an I/O error, a full disk),
 * not the job's. Its message never holds a host path: it may end up in a
 * signed result.
 */
export class SandboxRunError extends BuildhausError {
  override name = 'SandboxRunError'
}
