import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { access, chown, lstat, mkdir, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { componentLogger } from '../util/logger.js'
import { bwrapArgs, bwrapFeatures, detectHostLayout, warmBwrapArgs, SANDBOX_BUILD_UID, type BwrapFeatures, type BwrapPlan, type HostLayout } from './bwrap-args.js'
import { detectCgroups, type CgroupLimits, type Cgroups, type RunCgroup } from './cgroups.js'
import { BWRAP_INSTALL_HINT, SandboxUnavailableError } from './errors.js'
import { findTool, hostFingerprint, probeOutput, SYSTEM_PATH } from './host.js'
import { DEFAULT_LIMITS, MiB } from './limits.js'
import { ownTag } from './proc.js'
import { openFilesHardLimit, prlimitArgs, rlimitsFor, shellUlimitUnitsArePosix, ulimitScript } from './rlimits.js'
import { runJob, type PreparedRun, type SandboxBackend } from './run-job.js'
import { treeTools } from './tree-walk.js'
import { outerWrapper, StepProcess, type StepProcessOptions } from './step-process.js'
import type { EnvironmentFingerprint, Executor, RunOutcome, RunRequest, SandboxLimits } from './types.js'
import { WarmStep } from './warm-step.js'
import { cgroupViolation, ProcessTreeLimits } from './violations.js'
import { SparePool } from './spare.js'
import { noSeccompWarning, sandboxSeccomp, type SandboxSeccomp } from './seccomp.js'
import { SpawnHelper } from './spawn-helper.js'
import { canTraverse, clearStaleStaging, createWorkspace, DEFAULT_STAGING_ROOT, removeTree, writeSandboxEtc, type BuildUser, type Workspace, type WorkspaceOptions } from './workspace.js'

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
  /**
   * After this long without a run (ms), the executor drops its spare runs
   * and stops its spawn helper (default IDLE_RELEASE_MS): an idle node holds
   * neither; its next run makes its workspace then and starts fresh.
   */
  idleReleaseMs?: number
  /**
   * Load the system call filter in every sandbox (default true; seccomp.ts).
   * False only for benchmarks and tests that measure it: every run's record
   * then carries a warning, as it does where bwrap or the architecture
   * cannot have one. Not a volunteer's setting.
   */
  seccomp?: boolean
}

/**
 * An executor this long without a run lets its spare and its spawn helper go:
 * the helper's ~8–11 MB of its own put an idle node over the 100 MB it may
 * hold (docs/ARCHITECTURE.md), and the first run after an idle minute starting
 * its step fresh (+10–20 ms) is not a cost anyone sees.
 */
export const IDLE_RELEASE_MS = 30_000

/** Sandbox processes (bwrap and its init in the pid namespace) that the process limit does not charge to the job. */
const BWRAP_OVERHEAD = 2

function cgroupLimitsOf (limits: Pick<SandboxLimits, 'memoryMb' | 'processes'>): CgroupLimits {
  return { memoryBytes: limits.memoryMb * MiB, pids: limits.processes + BWRAP_OVERHEAD }
}
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
  /** The system call filter every step loads, made once, or why there is none. */
  seccomp: SandboxSeccomp
}

/**
 * The next spare's warm sandbox is started once the run's first step has
 * exited, or this long after its launch if it runs longer: forked while a
 * short step runs, it held back the step's exit report by ~6 ms
 * (bench/sandbox.ts, BENCHMARKS.md, twelfth session).
 */
const WARM_AFTER_LAUNCH_MS = 30

/** What a run needs before it can start, made ahead of time (see SparePool). */
interface Spare {
  workspace: Workspace
  /** Undefined where the executor bounds runs without cgroups. */
  cgroup: RunCgroup | undefined
  /** The sandbox of the run's first step, started already, if the run turns out to be shaped as expected. */
  warm: WarmStep | undefined
  /** The uid inside the sandbox that the workspace's passwd and group were written for, if they were. */
  etcUid?: number
}

/** What of a run, besides its workspace and cgroup, decides its steps' argv (but for SOURCE_DATE_EPOCH and the command). */
interface RunShape {
  limits: SandboxLimits
  network: boolean
  root: boolean
}

/**
 * Steps under bubblewrap. A root node starts each step as an unprivileged
 * build user (spawn's uid/gid: supplementary groups cleared, then setgid and
 * setuid before exec), never as root: bwrap run by real root maps the
 * sandbox's user to real root, which would own every root-owned file bound
 * into it, and RLIMIT_NPROC means nothing for uid 0.
 *
 * Each work root's spare run holds a warm step (see WarmStep): the sandbox
 * of the next run's first step, set up ahead for a run shaped like the last
 * one (its limits, network and root; initially a default job's). A run whose
 * first step would get exactly that argv hands it its command; any other
 * run kills it and launches fresh, as every later step is.
 */
export class BubblewrapExecutor implements Executor, SandboxBackend {
  readonly kind = 'bubblewrap' as const
  readonly pollMs: number
  readonly sharesUidWithBuilds: boolean
  /** First steps handed to a warm sandbox, and first steps launched fresh (for benchmarks and diagnostics). */
  readonly firstSteps = { warm: 0, fresh: 0 }
  private readonly buildUser: BuildUser | undefined
  /**
   * Starts the sandboxes' processes: always a helper, never this process.
   * Besides being cheaper (spawn-helper.ts), the helper closes what it
   * inherited, so no step holds the node's descriptors (LevelDB's files have
   * no close-on-exec, and a spawn from here would pass them on).
   */
  private readonly spawner: SpawnHelper
  private fingerprintCache: Promise<EnvironmentFingerprint> | undefined
  private readonly spares = new SparePool<Spare>(async (workRoot) => await this.makeSpare(workRoot), async (spare) => { await this.discard(spare) })
  /**
   * Spares taken for a run, until that run is prepared; with the call that
   * has the next spare made: once the run's first step is launched (or the
   * run ends without one), so that setting up the next sandbox does not
   * compete for the CPU with launching this one; its warm sandbox waits
   * longer (warmGate).
   */
  private readonly taken = new WeakMap<Workspace, Spare & { refill: () => void }>()
  /** The shape the next spare's warm step is made for: the last run's (an environment's run is never warm). */
  private shape: RunShape = { limits: DEFAULT_LIMITS, network: false, root: false }
  private activeRuns = 0
  private idleTimer: NodeJS.Timeout | undefined
  /** Dropping the spares and stopping the helper after an idle spell; a run waits for it to finish. */
  private releasing: Promise<void> | undefined
  private closed = false
  /** What the next warm sandbox waits for before it is started: the last launched first step's exit (or WARM_AFTER_LAUNCH_MS). */
  private warmGate: Promise<void> = Promise.resolve()
  /** Opening the gates not yet open: a run taking a spare wants its warm sandbox now. */
  private readonly warmGateOpeners = new Set<() => void>()

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
    this.spawner = new SpawnHelper()
    this.armIdleRelease()
  }

  async run (request: RunRequest): Promise<RunOutcome> {
    this.activeRuns++
    clearTimeout(this.idleTimer)
    try {
      await this.releasing
      return await runJob(this, request)
    } finally {
      this.activeRuns--
      this.armIdleRelease()
    }
  }

  private armIdleRelease (): void {
    clearTimeout(this.idleTimer)
    if (this.closed || this.activeRuns > 0) return
    this.idleTimer = setTimeout(() => { this.releaseWhenIdle() }, this.options.idleReleaseMs ?? IDLE_RELEASE_MS)
    this.idleTimer.unref()
  }

  private releaseWhenIdle (): void {
    if (this.closed || this.activeRuns > 0 || this.releasing !== undefined) return
    this.releasing = (async () => {
      await this.spares.clear()
      // A run that came meanwhile uses the helper: it stays.
      if (this.activeRuns === 0) this.spawner.close()
    })().catch((err: unknown) => {
      log('could not release the spare runs of an idle executor: %e', err)
    }).finally(() => { this.releasing = undefined })
  }

  /** A run's workspace (and, with cgroups, its group, and a warm step), made ahead of time (see SparePool). */
  async takeWorkspace (request: RunRequest): Promise<Workspace> {
    // The spare made now, for the next run, is warmed for a run like this one.
    if (request.rootfs === undefined) this.shape = { limits: { ...request.limits }, network: request.network, root: request.root }
    // Its spare may be waiting for another run's step before starting its warm sandbox: not for this run.
    for (const open of this.warmGateOpeners) open()
    let refill!: () => void
    const spare = await this.spares.take(request.workRoot, new Promise<void>((resolve) => { refill = resolve }))
    this.taken.set(spare.workspace, { ...spare, refill })
    return spare.workspace
  }

  /** The run of `workspace` ends before its steps were prepared: release its cgroup and warm step now. */
  async abandon (workspace: Workspace): Promise<void> {
    const spare = this.taken.get(workspace)
    this.taken.delete(workspace)
    spare?.refill()
    if (spare !== undefined) await this.discard({ ...spare, workspace: undefined })
  }

  /** Resolves once `workRoot`'s spare run is made and its warm step (if any) set up, as an idle node's would be. */
  async spareReady (workRoot: string): Promise<void> {
    const spare = await this.spares.ready(workRoot)
    await spare?.warm?.started
  }

  /** Remove the spare runs kept ready (the node is stopping). */
  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.idleTimer)
    await this.releasing
    await this.spares.close()
    this.spawner.close()
  }

  /** Forget `workRoot`'s spare (the self-test's temporary work root). */
  async dropSpare (workRoot: string): Promise<void> {
    await this.spares.drop(workRoot)
  }

  private async makeSpare (workRoot: string): Promise<Spare> {
    const workspace = await createWorkspace(workRoot, this.workspaceOptions())
    let cgroup: RunCgroup | undefined
    if (this.cgroups !== undefined) {
      try {
        cgroup = await this.makeCgroup(cgroupLimitsOf(DEFAULT_LIMITS))
      } catch (err) {
        log('cannot make a cgroup ahead of a run (its run will try again): %e', err)
      }
    }
    let warm: WarmStep | undefined
    let etcUid: number | undefined
    // Without `--size`, /tmp is a directory of the workspace that prepare() makes: such runs start fresh.
    if (this.tools.features.size) {
      const { limits, network, root } = this.shape
      const insideUid = root ? 0 : SANDBOX_BUILD_UID
      try {
        // bwrap binds passwd and group as files: prepare() rewrites them in place (same inodes, same content).
        await writeSandboxEtc(workspace.etcDir, insideUid)
        etcUid = insideUid
        const plan = this.plan(workspace, { network, insideUid, limits }, cgroup, this.tools.prlimit)
        await this.warmGate
        warm = new WarmStep(this.warmArgv(plan, limits, cgroup), this.stepOptions(cgroup))
      } catch (err) {
        log('cannot start a warm step ahead of a run (its first step will start fresh): %e', err)
      }
    }
    return { workspace, cgroup, warm, ...(etcUid !== undefined ? { etcUid } : {}) }
  }

  /** Kill a spare's warm step (first: it sits in the cgroup), then remove the rest. */
  private async discard ({ workspace, cgroup, warm }: { workspace: Workspace | undefined, cgroup: RunCgroup | undefined, warm: WarmStep | undefined }): Promise<void> {
    await warm?.discard()
    await workspace?.remove()
    await cgroup?.remove()
  }

  private async makeCgroup (limits: CgroupLimits): Promise<RunCgroup> {
    const cgroup = await this.cgroups!.create(`${ownTag()}-${randomBytes(6).toString('hex')}`, limits)
    // The wrapper runs as the build user and joins the run's cgroup itself.
    if (this.buildUser !== undefined) {
      for (const file of cgroup.procsFiles) await chown(file, this.buildUser.uid, this.buildUser.gid)
    }
    return cgroup
  }

  async fingerprint (): Promise<EnvironmentFingerprint> {
    this.fingerprintCache ??= hostFingerprint({
      sandbox: 'bubblewrap',
      bwrap: this.tools.version,
      limits: this.cgroups === undefined ? 'rlimits' : this.cgroups.version === 1 ? 'cgroup-v1' : 'cgroup-v2',
      ...('program' in this.tools.seccomp ? { seccomp: this.tools.seccomp.label } : { warning: noSeccompWarning(this.tools.seccomp.missing) })
    })
    return await this.fingerprintCache
  }

  workspaceOptions (): WorkspaceOptions {
    const options: WorkspaceOptions = { stagingRoot: this.options.stagingRoot ?? DEFAULT_STAGING_ROOT }
    if (this.buildUser !== undefined) options.buildUser = this.buildUser
    return options
  }

  async prepare (request: RunRequest, workspace: Workspace): Promise<PreparedRun> {
    const spare = this.taken.get(workspace)
    this.taken.delete(workspace)
    let warm = spare?.warm
    const { limits } = request
    const insideUid = request.root ? 0 : SANDBOX_BUILD_UID
    const diskDirs = [workspace.buildDir]
    let tmpDir: string | undefined
    let rootfs: string | undefined
    try {
      // The spare's are this run's already when it was made for the same uid (nothing ran in it since).
      if (spare?.etcUid !== insideUid) await writeSandboxEtc(workspace.etcDir, insideUid)
      if (request.rootfs !== undefined) {
        // bwrap binds the environment by path, as the build user: every directory above it must let that user through.
        if (this.buildUser !== undefined && !await canTraverse(request.rootfs.path, this.buildUser).catch(() => false)) {
          throw new SandboxUnavailableError(`the build user (uid ${this.buildUser.uid}) cannot reach the environment ${request.rootfs.path}; keep environments where every directory above them is traversable (chmod o+x), such as the default /var/cache/buildhaus/environments`)
        }
        rootfs = request.rootfs.path
      }
      if (!this.tools.features.size) {
        tmpDir = join(workspace.stageDir, 'tmp')
        await mkdir(tmpDir, { mode: 0o700 })
        if (this.buildUser !== undefined) await chown(tmpDir, this.buildUser.uid, this.buildUser.gid)
        diskDirs.push(tmpDir)
      }
    } catch (err) {
      spare?.refill()
      if (spare !== undefined) await this.discard({ ...spare, workspace: undefined })
      throw err
    }

    let cgroup: RunCgroup | undefined
    if (this.cgroups !== undefined) {
      try {
        // The group made with the workspace, given this run's limits; else one made now.
        const ready = spare?.cgroup
        if (ready !== undefined) {
          await ready.limit(cgroupLimitsOf(limits)).then(() => { cgroup = ready }, async (err: unknown) => {
            log('cannot set the limits of a prepared cgroup, making another: %e', err)
            // Its warm step sits in it.
            await warm?.discard()
            warm = undefined
            await ready.remove().catch(() => {})
          })
        }
        cgroup ??= await this.makeCgroup(cgroupLimitsOf(limits))
      } catch (err) {
        log.error('cannot make a cgroup for this run, falling back to rlimits: %e', err)
      }
    }
    const treeLimits = cgroup === undefined ? new ProcessTreeLimits(limits, BWRAP_OVERHEAD) : undefined
    // It runs inside the sandbox: in an environment, that environment's prlimit (util-linux, Essential in Debian), if it has one.
    const prlimit = rootfs === undefined ? this.tools.prlimit : await environmentTool(rootfs, 'usr/bin/prlimit')
    const plan = this.plan(workspace, { network: request.network, insideUid, limits, rootfs, tmpDir }, cgroup, prlimit)
    const prefix = this.commandPrefix(limits, cgroup)
    const options = this.stepOptions(cgroup)
    // The warm step is used only where the first step's argv would be exactly its own (the command and SOURCE_DATE_EPOCH aside).
    if (warm !== undefined && !warm.fits(this.warmArgv(plan, limits, cgroup))) {
      await warm.discard()
      warm = undefined
    }
    if (request.sourceDateEpoch !== undefined) plan.sourceDateEpoch = request.sourceDateEpoch
    let launched = 0
    // At the first step's launch: the next spare is begun; its warm sandbox waits for this step (see warmGate).
    const afterLaunch = (proc: StepProcess): void => {
      if (spare === undefined) return
      this.warmGate = new Promise<void>((resolve) => {
        const open = (): void => {
          clearTimeout(timer)
          this.warmGateOpeners.delete(open)
          resolve()
        }
        const timer = setTimeout(open, WARM_AFTER_LAUNCH_MS)
        this.warmGateOpeners.add(open)
        void proc.exited.then(open)
      })
      spare.refill()
    }
    return {
      launch: async (step) => {
        const first = launched++ === 0
        const candidate = warm
        warm = undefined
        const proc = await candidate?.handOver(step.run, request.sourceDateEpoch)
        if (proc !== undefined) {
          this.firstSteps.warm++
          afterLaunch(proc)
          return proc
        }
        if (first) this.firstSteps.fresh++
        const fresh = new StepProcess([...prefix, this.tools.bwrap, ...bwrapArgs(plan, step.run)], options)
        if (first) afterLaunch(fresh)
        return fresh
      },
      check: async (proc) => cgroup !== undefined
        ? cgroupViolation(limits, await cgroup.usage())
        : await treeLimits!.check(proc.pid),
      stepEnded: () => { treeLimits?.stepEnded() },
      // bwrap exits as soon as the step's command has: its init may still be emptying the pid namespace.
      mayLeaveProcesses: () => true,
      diskDirs,
      // Not waited for: the group is empty by now (the step's processes were killed and waited for), and
      // removing it can take retries while the kernel lets go of it; the result does not depend on it.
      release: async () => {
        spare?.refill()
        // An unused warm step sits in the group: gone first.
        await warm?.discard()
        warm = undefined
        cgroup?.remove().catch((err: unknown) => { log.error('cannot remove a run\'s cgroup (the next node start clears it): %e', err) })
      }
    }
  }

  /** What bwrap is told for a run's steps in this workspace and cgroup. */
  private plan (workspace: Workspace, run: { network: boolean, insideUid: number, limits: SandboxLimits, rootfs?: string | undefined, tmpDir?: string | undefined }, cgroup: RunCgroup | undefined, prlimit: string | undefined): BwrapPlan {
    const plan: BwrapPlan = {
      layout: this.layout,
      features: this.tools.features,
      buildDir: workspace.buildDir,
      etcDir: workspace.etcDir,
      network: run.network,
      insideUid: run.insideUid,
      limits: run.limits
    }
    if (run.rootfs !== undefined) plan.rootfs = run.rootfs
    if (run.tmpDir !== undefined) plan.tmpDir = run.tmpDir
    if ('program' in this.tools.seccomp) plan.seccomp = true
    // Without a pids cgroup the kernel's only bound on processes; above the limit, so that the monitor sees the job reach it and names it.
    if (cgroup === undefined && prlimit !== undefined) plan.processBackstop = { prlimit, max: 2 * run.limits.processes + 2 }
    return plan
  }

  /** The argv of a warm step for `plan` (without SOURCE_DATE_EPOCH, which the warm step is handed with the command). */
  private warmArgv (plan: BwrapPlan, limits: SandboxLimits, cgroup: RunCgroup | undefined): string[] {
    const timeless = { ...plan }
    delete timeless.sourceDateEpoch
    return [...this.commandPrefix(limits, cgroup), this.tools.bwrap, ...warmBwrapArgs(timeless)]
  }

  private stepOptions (cgroup: RunCgroup | undefined): StepProcessOptions {
    return {
      cwd: '/',
      env: { PATH: SYSTEM_PATH, LANG: 'C' },
      ...(this.buildUser === undefined ? {} : { user: this.buildUser }),
      sandboxInfo: true,
      ...(cgroup === undefined ? {} : { cgroupPids: cgroup.pids }),
      ...('program' in this.tools.seccomp ? { seccomp: this.tools.seccomp.program } : {}),
      spawn: this.spawner.spawn.bind(this.spawner)
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
  const features = bwrapFeatures(help)
  const prlimit = await findTool('prlimit')
  if (prlimit === undefined) throw new SandboxUnavailableError('prlimit is missing (it sets the builds\' resource limits); install util-linux')
  await treeTools()
  const isRoot = process.getuid?.() === 0
  const seccomp = options.seccomp === false ? { missing: 'turned off in the executor\'s options' } : sandboxSeccomp(features.seccomp)
  if (!('program' in seccomp)) log.error('%s', noSeccompWarning(seccomp.missing))
  const tools: Tools = { bwrap, prlimit, version, features, ulimitBuiltins: await shellUlimitUnitsArePosix(), seccomp }
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
    await executor.dropSpare(workRoot)
    if (outcome.status !== 'pass') {
      const message = outcome.log.toString('utf8').trim().split('\n').slice(-3).join(' / ')
      throw new SandboxUnavailableError(`bubblewrap is installed but cannot start a sandbox here (${outcome.reason ?? outcome.status}: ${message}); unprivileged user namespaces may be disabled (check \`sysctl user.max_user_namespaces\` and, on Debian/Ubuntu, \`kernel.unprivileged_userns_clone\` or the AppArmor userns restriction), or pass --sandbox=none to run builds unsandboxed (unsafe)`)
    }
  } finally {
    await removeTree(workRoot)
  }
}
