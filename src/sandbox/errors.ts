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
