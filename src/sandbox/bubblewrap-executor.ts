import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { access, chown, lstat, mkdir, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { componentLogger } from '../util/logger.js'
import { bwrapArgs, detectHostLayout, SANDBOX_BUILD_UID, type BwrapFeatures, type BwrapPlan, type HostLayout } from './bwrap-args.js'
import { detectCgroups, type Cgroups, type RunCgroup } from './cgroups.js'
import { BWRAP_INSTALL_HINT, SandboxUnavailableError } from './errors.js'
import { findTool, hostFingerprint, probeOutput, SYSTEM_PATH } from './host.js'
import { DEFAULT_LIMITS, MiB } from './limits.js'
import { ownTag } from './proc.js'
import { openFilesHardLimit, prlimitArgs, rlimitsFor, shellUlimitUnitsArePosix, ulimitScript } from './rlimits.js'
import { runJob, type PreparedRun, type SandboxBackend } from './run-job.js'
import { treeTools } from './tree-walk.js'
import { outerWrapper, StepProcess } from './step-process.js'
import type { EnvironmentFingerprint, Executor, RunOutcome, RunRequest, SandboxLimits } from './types.js'
import { cgroupViolation, ProcessTreeLimits } from './violations.js'
import { canTraverse, clearStaleStaging, removeTree, writeSandboxEtc, type BuildUser, type Workspace, type WorkspaceOptions } from './workspace.js'

const log = componentLogger('sandbox:bubblewrap')

export interface BubblewrapOptions {
  /** bwrap to use; default: found on the PATH. */
  bwrapPath?: string
  /** When the node runs as root, builds run as this uid/gid (default 65534, nobody/nogroup). */
  buildUid?: number
  buildGid?: number
  /** Use cgroups when this process may (default true); false forces rlimits and the /proc monitor. */
  cgroups?: boolean
  /** Where a root node stages workspaces its build user cannot reach under workRoot (default /var/tmp/buildhaus-sandbox). */
  stagingRoot?: string
  /** How often running steps are checked against their limits, ms (default 200). */
  pollMs?: number
  /** Host paths to bind read-only at the same place, e.g. a toolchain under /opt. */
  extraReadOnly?: string[]
  /** Run a trivial job when the executor is made, to fail early with a clear error (default true). */
  selfTest?: boolean
}

/** Sandbox processes (bwrap and its init in the pid namespace) that the process limit does not charge to the job. */
const BWRAP_OVERHEAD = 2
/** An empty tar: two zero blocks. */
const EMPTY_TAR = Buffer.alloc(1024)

interface Tools {
  bwrap: string
  prlimit: string
  version: string
  features: BwrapFeatures
  /** /bin/sh's ulimit has POSIX units: set rlimits with it instead of exec'ing prlimit. */
  ulimitBuiltins: boolean
  /** The node's own hard limit on open files (a node not root cannot give more). */
  openFilesCeiling?: number
}

/**
 * Steps under bubblewrap. A root node starts each step as an unprivileged
 * build user (spawn's uid/gid: supplementary groups cleared, then setgid and
 * setuid before exec), never as root: bwrap run by real root maps the
 * sandbox's user to real root, which would own every root-owned file bound
 * into it, and RLIMIT_NPROC means nothing for uid 0.
 */
export class BubblewrapExecutor implements Executor, SandboxBackend {
  readonly kind = 'bubblewrap' as const
  readonly pollMs: number
  readonly sharesUidWithBuilds: boolean
  private readonly buildUser: BuildUser | undefined
  private fingerprintCache: Promise<EnvironmentFingerprint> | undefined

  constructor (
    private readonly tools: Tools,
    private readonly layout: HostLayout,
    private readonly cgroups: Cgroups | undefined,
    private readonly options: BubblewrapOptions
  ) {
    this.pollMs = options.pollMs ?? 200
    const isRoot = process.getuid?.() === 0
    this.buildUser = isRoot ? { uid: options.buildUid ?? 65534, gid: options.buildGid ?? 65534 } : undefined
    this.sharesUidWithBuilds = !isRoot
  }

  async run (request: RunRequest): Promise<RunOutcome> {
    return await runJob(this, request)
  }

  async fingerprint (): Promise<EnvironmentFingerprint> {
    this.fingerprintCache ??= hostFingerprint({
      sandbox: 'bubblewrap',
      bwrap: this.tools.version,
      limits: this.cgroups === undefined ? 'rlimits' : this.cgroups.version === 1 ? 'cgroup-v1' : 'cgroup-v2'
    })
    return await this.fingerprintCache
  }

  workspaceOptions (): WorkspaceOptions {
    const options: WorkspaceOptions = { stagingRoot: this.options.stagingRoot ?? '/var/tmp/buildhaus-sandbox' }
    if (this.buildUser !== undefined) options.buildUser = this.buildUser
    return options
  }

  async prepare (request: RunRequest, workspace: Workspace): Promise<PreparedRun> {
    const { limits } = request
    const insideUid = request.root ? 0 : SANDBOX_BUILD_UID
    await writeSandboxEtc(workspace.etcDir, insideUid)
    const plan: BwrapPlan = {
      layout: this.layout,
      features: this.tools.features,
      buildDir: workspace.buildDir,
      etcDir: workspace.etcDir,
      network: request.network,
      insideUid,
      limits
    }
    if (request.sourceDateEpoch !== undefined) plan.sourceDateEpoch = request.sourceDateEpoch
    if (request.rootfs !== undefined) {
      // bwrap binds the environment by path, as the build user: every directory above it must let that user through.
      if (this.buildUser !== undefined && !await canTraverse(request.rootfs.path, this.buildUser).catch(() => false)) {
        throw new SandboxUnavailableError(`the build user (uid ${this.buildUser.uid}) cannot reach the environment ${request.rootfs.path}; keep environments where every directory above them is traversable (chmod o+x), such as the default /var/cache/buildhaus/environments`)
      }
      plan.rootfs = request.rootfs.path
    }
    const diskDirs = [workspace.buildDir]
    if (!this.tools.features.size) {
      plan.tmpDir = join(workspace.stageDir, 'tmp')
      await mkdir(plan.tmpDir, { mode: 0o700 })
      if (this.buildUser !== undefined) await chown(plan.tmpDir, this.buildUser.uid, this.buildUser.gid)
      diskDirs.push(plan.tmpDir)
    }

    let cgroup: RunCgroup | undefined
    if (this.cgroups !== undefined) {
      try {
        cgroup = await this.cgroups.create(`${ownTag()}-${randomBytes(6).toString('hex')}`, {
          memoryBytes: limits.memoryMb * MiB,
          pids: limits.processes + BWRAP_OVERHEAD
        })
      } catch (err) {
        log.error('cannot make a cgroup for this run, falling back to rlimits: %e', err)
      }
    }
    const treeLimits = cgroup === undefined ? new ProcessTreeLimits(limits, BWRAP_OVERHEAD) : undefined
    // Without a pids cgroup the kernel's only bound on processes; above the limit, so that the monitor sees the job reach it and names it.
    // It runs inside the sandbox: in an environment, that environment's prlimit (util-linux, Essential in Debian), if it has one.
    const prlimit = request.rootfs === undefined ? this.tools.prlimit : await environmentTool(request.rootfs.path, 'usr/bin/prlimit')
    if (cgroup === undefined && prlimit !== undefined) plan.processBackstop = { prlimit, max: 2 * limits.processes + 2 }
    // The wrapper runs as the build user and joins the run's cgroup itself.
    if (cgroup !== undefined && this.buildUser !== undefined) {
      for (const file of cgroup.procsFiles) await chown(file, this.buildUser.uid, this.buildUser.gid)
    }
    const prefix = this.commandPrefix(limits, cgroup)
    return {
      launch: (step) => new StepProcess([...prefix, this.tools.bwrap, ...bwrapArgs(plan, step.run)], {
        cwd: '/',
        env: { PATH: SYSTEM_PATH, LANG: 'C' },
        ...(this.buildUser === undefined ? {} : { user: this.buildUser }),
        sandboxInfo: true,
        ...(cgroup === undefined ? {} : { cgroupPids: cgroup.pids })
      }),
      check: async (proc) => cgroup !== undefined
        ? cgroupViolation(limits, await cgroup.usage())
        : await treeLimits!.check(proc.pid),
      stepEnded: () => { treeLimits?.stepEnded() },
      // bwrap exits as soon as the step's command has: its init may still be emptying the pid namespace.
      mayLeaveProcesses: () => true,
      diskDirs,
      release: async () => { await cgroup?.remove() }
    }
  }

  /** The chain before bwrap (already as the build user): join the cgroup, set the rlimits. */
  private commandPrefix (limits: SandboxLimits, cgroup: RunCgroup | undefined): string[] {
    const rlimits = rlimitsFor(limits, {
      dataBackstop: cgroup === undefined,
      // Rlimits are set after the drop: no more open files than this node may have itself.
      ...(this.tools.openFilesCeiling === undefined ? {} : { openFilesCeiling: this.tools.openFilesCeiling })
    })
    const [setup, prlimit] = this.tools.ulimitBuiltins ? [ulimitScript(rlimits), []] : ['', prlimitArgs(this.tools.prlimit, rlimits)]
    return ['/bin/sh', '-c', outerWrapper(setup), 'buildhaus-sandbox', ...(cgroup?.procsFiles ?? []), '--', ...prlimit]
  }
}

/** Find bwrap and its helpers, learn what this machine offers, and prove a sandbox starts. */
export async function createBubblewrapExecutor (options: BubblewrapOptions = {}): Promise<BubblewrapExecutor> {
  const bwrap = options.bwrapPath === undefined ? await findTool('bwrap') : await executable(options.bwrapPath)
  if (bwrap === undefined) throw new SandboxUnavailableError(`bubblewrap (bwrap) is not installed, and buildhaus will not run strangers' builds without a sandbox: ${BWRAP_INSTALL_HINT}`)
  const version = (await probeOutput(bwrap, ['--version']))?.trim()
  if (version === undefined) throw new SandboxUnavailableError(`${bwrap} does not run; reinstall bubblewrap (Debian/Ubuntu: \`sudo apt-get install --reinstall bubblewrap\`), or pass --sandbox=none to run builds unsandboxed (unsafe)`)
  const help = await probeOutput(bwrap, ['--help']) ?? ''
  const features: BwrapFeatures = { size: help.includes('--size'), disableUserns: help.includes('--disable-userns') }
  const prlimit = await findTool('prlimit')
  if (prlimit === undefined) throw new SandboxUnavailableError('prlimit is missing (it sets the builds\' resource limits); install util-linux')
  await treeTools()
  const isRoot = process.getuid?.() === 0
  const tools: Tools = { bwrap, prlimit, version, features, ulimitBuiltins: await shellUlimitUnitsArePosix() }
  const ceiling = openFilesHardLimit()
  if (ceiling !== undefined) tools.openFilesCeiling = ceiling
  if (isRoot) {
    if ((options.buildUid ?? 65534) === 0) throw new SandboxUnavailableError('the build user must not be root (uid 0); choose an unprivileged uid such as 65534')
  }
  let cgroups: Cgroups | undefined
  if (options.cgroups !== false) {
    const found = await detectCgroups()
    if (found.ok) cgroups = found.cgroups
    else log('no usable cgroups, using rlimits and a /proc monitor: %s', found.reason)
  }
  const executor = new BubblewrapExecutor(tools, await detectHostLayout(options.extraReadOnly ?? []), cgroups, options)
  if (isRoot) await clearStaleStaging(executor.workspaceOptions().stagingRoot)
  if (options.selfTest !== false) await selfTest(executor)
  return executor
}

/** `/<relative>` if the environment has it as a regular file (never following its links out of it). */
async function environmentTool (root: string, relative: string): Promise<string | undefined> {
  const stats = await lstat(join(root, relative)).catch(() => undefined)
  return stats?.isFile() === true ? `/${relative}` : undefined
}

async function executable (path: string): Promise<string | undefined> {
  try {
    await access(path, fsConstants.X_OK)
    return path
  } catch {
    return undefined
  }
}

async function selfTest (executor: BubblewrapExecutor): Promise<void> {
  const workRoot = await mkdtemp(join(tmpdir(), 'buildhaus-sandbox-check-'))
  try {
    const outcome = await executor.run({
      source: EMPTY_TAR,
      steps: [{ name: 'check', run: 'true' }],
      artifacts: [],
      network: false,
      root: false,
      limits: { ...DEFAULT_LIMITS, wallSeconds: 30 },
      workRoot
    })
    await outcome.dispose()
    if (outcome.status !== 'pass') {
      const message = outcome.log.toString('utf8').trim().split('\n').slice(-3).join(' / ')
      throw new SandboxUnavailableError(`bubblewrap is installed but cannot start a sandbox here (${outcome.reason ?? outcome.status}: ${message}); unprivileged user namespaces may be disabled (check \`sysctl user.max_user_namespaces\` and, on Debian/Ubuntu, \`kernel.unprivileged_userns_clone\` or the AppArmor userns restriction), or pass --sandbox=none to run builds unsandboxed (unsafe)`)
    }
  } finally {
    await removeTree(workRoot)
  }
}
