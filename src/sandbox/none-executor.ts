import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { SandboxUnavailableError } from './errors.js'
import { findTool, hostFingerprint, SYSTEM_PATH } from './host.js'
import { runJob, type PreparedRun, type SandboxBackend } from './run-job.js'
import { treeTools } from './tree-walk.js'
import { openFilesHardLimit, prlimitArgs, rlimitsFor, shellUlimitUnitsArePosix, ulimitScript } from './rlimits.js'
import { INNER_WRAPPER, outerWrapper, StepProcess } from './step-process.js'
import type { EnvironmentFingerprint, Executor, RunOutcome, RunRequest } from './types.js'
import { ProcessTreeLimits } from './violations.js'
import { DEFAULT_STAGING_ROOT, type Workspace, type WorkspaceOptions } from './workspace.js'

export const UNSANDBOXED_WARNING = 'UNSANDBOXED: this node runs builds with --sandbox=none, as its own user, with its network and files; a job can read or change anything that user can. Results from it prove nothing about isolation.'

export interface NoSandboxOptions {
  /** How often running steps are checked against their limits, ms (default 200). */
  pollMs?: number
}

/**
 * Steps as plain processes, for machines without bubblewrap whose owner opted
 * in. Still enforced: wall time, output and log size, the workspace size
 * (polled), rlimits (CPU, file size, open files, a memory backstop) and the
 * /proc monitor for memory, processes and CPU. Not enforced: any isolation.
 * A daemon that calls setsid() escapes the kill.
 */
export class NoSandboxExecutor implements Executor, SandboxBackend {
  readonly kind = 'none' as const
  readonly pollMs: number
  readonly sharesUidWithBuilds = true
  private fingerprintCache: Promise<EnvironmentFingerprint> | undefined

  constructor (
    private readonly prlimit: string | undefined,
    private readonly ulimitBuiltins: boolean,
    private readonly openFilesCeiling: number | undefined,
    options: NoSandboxOptions = {}
  ) {
    this.pollMs = options.pollMs ?? 200
  }

  async run (request: RunRequest): Promise<RunOutcome> {
    if (request.rootfs !== undefined) throw new SandboxUnavailableError('--sandbox none cannot run a build in an environment (it needs bubblewrap to make the environment its root)')
    return await runJob(this, request)
  }

  async fingerprint (): Promise<EnvironmentFingerprint> {
    this.fingerprintCache ??= hostFingerprint({ sandbox: 'none', limits: 'rlimits', warning: UNSANDBOXED_WARNING })
    return await this.fingerprintCache
  }

  workspaceOptions (): WorkspaceOptions {
    return { stagingRoot: DEFAULT_STAGING_ROOT }
  }

  async prepare (request: RunRequest, workspace: Workspace): Promise<PreparedRun> {
    const { limits } = request
    const home = join(workspace.stageDir, 'home')
    const tmp = join(workspace.stageDir, 'tmp')
    await mkdir(home, { mode: 0o700 })
    await mkdir(tmp, { mode: 0o700 })
    const env: Record<string, string> = { HOME: home, TMPDIR: tmp, PATH: SYSTEM_PATH, LANG: 'C.UTF-8', TZ: 'UTC', BUILDHAUS: '1' }
    if (request.sourceDateEpoch !== undefined) env.SOURCE_DATE_EPOCH = String(request.sourceDateEpoch)
    const rlimits = rlimitsFor(limits, { dataBackstop: true, ...(this.openFilesCeiling === undefined ? {} : { openFilesCeiling: this.openFilesCeiling }) })
    // ulimit builtins when /bin/sh has POSIX units, else prlimit; with neither (best effort here), none.
    const [setup, prlimit] = this.ulimitBuiltins
      ? [ulimitScript(rlimits), []]
      : this.prlimit === undefined ? ['', []] : ['', prlimitArgs(this.prlimit, rlimits)]
    const treeLimits = new ProcessTreeLimits(limits, 0)
    return {
      launch: (step) => new StepProcess(
        ['/bin/sh', '-c', outerWrapper(setup), 'buildhaus-sandbox', '--', ...prlimit, '/bin/sh', '-c', INNER_WRAPPER, 'buildhaus-step', '/bin/sh', '-c', step.run],
        { cwd: workspace.buildDir, env }
      ),
      check: async (proc) => await treeLimits.check(proc.pid),
      stepEnded: () => { treeLimits.stepEnded() },
      mayLeaveProcesses: () => true,
      diskDirs: [workspace.buildDir, tmp, home],
      release: async () => {}
    }
  }
}

export async function createNoSandboxExecutor (options: NoSandboxOptions = {}): Promise<NoSandboxExecutor> {
  await treeTools()
  return new NoSandboxExecutor(await findTool('prlimit'), await shellUlimitUnitsArePosix(), openFilesHardLimit(), options)
}
