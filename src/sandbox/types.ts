/** One command line of a job, run as `sh -c <run>` in the workspace. */
export interface Step {
  name: string
  run: string
}

/** Every bound a run is held to. Sizes in the unit their name says. */
export interface SandboxLimits {
  /** Wall-clock time of all steps together. */
  wallSeconds: number
  /** CPU time: of each process (RLIMIT_CPU) and, where cgroups or /proc allow, of all of them together. */
  cpuSeconds: number
  /** Memory of all the run's processes together (and the private /tmp). */
  memoryMb: number
  /** Processes (and threads, under cgroups) alive at once. */
  processes: number
  /** Largest file a process may write (RLIMIT_FSIZE). */
  fileMb: number
  /** Open files per process (RLIMIT_NOFILE). */
  openFiles: number
  /** Disk used by the workspace: the unpacked source plus everything the steps write. */
  workspaceMb: number
  /** Size of the kept log (head and tail kept, the middle dropped). */
  logKb: number
  /** Total output (stdout + stderr) the steps may print before the run is ended. */
  outputMb: number
}

/**
 * A root file system to run the steps in instead of the host's system
 * directories (an environment, see src/environments): bound read-only as
 * `/`, with the workspace at /build and private /tmp, /var/tmp, /dev and
 * /proc mounted over it. It must hold those mount points and the files
 * bound over (/etc/passwd, /etc/group, /etc/resolv.conf), and /bin/sh.
 */
export interface RunRoot {
  /** The root directory on the host. */
  path: string
  /** What the system calls itself (its os-release), for the fingerprint. */
  os: string
}

export interface RunRequest {
  /** The source, a tar.gz (or tar). */
  source: Buffer
  steps: Step[]
  /** picomatch globs, relative to the workspace, of the files to collect. */
  artifacts: string[]
  /** Share the host's network (the caller's policy decided this may be). */
  network: boolean
  /** Run as uid 0 inside the sandbox's user namespace (no real privilege). */
  root: boolean
  /** Run in this root file system; absent: the host's system directories. */
  rootfs?: RunRoot
  limits: SandboxLimits
  sourceDateEpoch?: number
  /** Parent directory for the per-run directory (artifact copies, and the workspace when the build user can reach it). */
  workRoot: string
  /** Cancels the run: the steps are killed and the outcome is `error` / `cancelled`. */
  signal?: AbortSignal
  /** Live log, in order, as it is produced (step headers and trailers included). */
  onLog?: (text: string) => void
}

export type RunStatus = 'pass' | 'fail' | 'timeout' | 'error' | 'refused'

export interface StepOutcome {
  name: string
  /** Exit code; null when the step was killed by a signal seen directly (the `none` sandbox, or buildhaus's own kill). */
  exit: number | null
  signal?: string
  ms: number
}

export interface CollectedArtifact {
  /** Relative to the workspace, posix separators. */
  path: string
  sha256: string
  size: number
  /** Absolute path of a copy the caller may move (it lives under the request's workRoot). */
  file: string
}

export interface EnvironmentFingerprint {
  os: string
  kernel: string
  arch: string
  sandbox: 'bubblewrap' | 'none'
  bwrap?: string
  /** How resource limits were enforced: kernel cgroups, or rlimits plus a /proc monitor. */
  limits?: 'cgroup-v1' | 'cgroup-v2' | 'rlimits'
  /** The system call filter every step loaded (e.g. `buildhaus-1 x86_64`, seccomp.ts); absent: none, and `warning` says why. */
  seccomp?: string
  /** First line of each tool's version, e.g. { cc: 'cc (Debian 12.2.0-14) 12.2.0', sh: 'dash' } (the host's: empty in an environment, whose manifest lists its packages). */
  tools: Record<string, string>
  warning?: string
}

export interface RunOutcome {
  status: RunStatus
  /** Why the run ended, when it was not pass/fail, e.g. 'memory limit (256 MB)'. */
  reason?: string
  steps: StepOutcome[]
  log: Buffer
  logTruncated: boolean
  artifacts: CollectedArtifact[]
  /** ms since the epoch. */
  start: number
  end: number
  env: EnvironmentFingerprint
  /** Deletes the workspace and the artifact copies not moved away. */
  dispose: () => Promise<void>
}

export interface Executor {
  readonly kind: 'bubblewrap' | 'none'
  run: (request: RunRequest) => Promise<RunOutcome>
  fingerprint: () => Promise<EnvironmentFingerprint>
  /** Release what the executor keeps ready between runs (spare workspaces and cgroups); runs still work afterwards. */
  close?: () => Promise<void>
}
