import { createBubblewrapExecutor, type BubblewrapOptions } from './bubblewrap-executor.js'
import { createNoSandboxExecutor, type NoSandboxOptions } from './none-executor.js'
import type { Executor } from './types.js'

export type {
  Step, SandboxLimits, RunRequest, RunRoot, RunStatus, StepOutcome, CollectedArtifact, EnvironmentFingerprint, RunOutcome, Executor
} from './types.js'
export { DEFAULT_LIMITS, HARD_MAXIMUMS, MINIMUMS, LIMIT_KEYS, describeLimit } from './limits.js'
export { admit, loadPolicy, defaultPolicy, DEFAULT_POLICY, type AdmissionPolicy, type JobRequirements, type Admission } from './policy.js'
export { measureHost, hostMaximums, HOST_SHARE, DEFAULT_MAX_WALL_SECONDS, type HostCapacity } from './capacity.js'
export { SandboxUnavailableError, PolicyFileError, WorkspaceRemovalError, SandboxRunError, BWRAP_INSTALL_HINT } from './errors.js'
export { clearWorkspaces } from './workspace.js'
export { UNSANDBOXED_WARNING } from './none-executor.js'
export { SANDBOX_WORKSPACE } from './bwrap-args.js'
export type { BubblewrapOptions, NoSandboxOptions }

export type ExecutorOptions = BubblewrapOptions & NoSandboxOptions

/**
 * The executor of one kind. `bubblewrap` fails with SandboxUnavailableError
 * (saying how to install it, or to opt out with --sandbox=none) when it is
 * missing or cannot start a sandbox here. `none` runs steps as plain
 * processes, with a loud warning in every fingerprint. Other sandboxes
 * (macOS, Windows) fit behind the same Executor interface.
 */
export async function createExecutor (kind: 'bubblewrap' | 'none', options: ExecutorOptions = {}): Promise<Executor> {
  if (kind === 'none') return await createNoSandboxExecutor(options)
  return await createBubblewrapExecutor(options)
}
