import { constants as fsConstants } from 'node:fs'
import { access, chmod, copyFile, mkdtemp, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { describeError } from '../util/errors.js'
import { bwrapFeatures, detectHostLayout, hostSystemArgs, SANDBOX_BUILD_UID, SANDBOX_PATH, seccompArgs, type BwrapFeatures, type HostLayout } from './bwrap-args.js'
import { findTool, probeOutput, SYSTEM_PATH } from './host.js'
import { ownTag } from './proc.js'
import { spawnOnHost } from './host-process.js'
import { sandboxSeccomp } from './seccomp.js'
import { INFO_FD, INNER_WRAPPER, StepProcess, type StepExit } from './step-process.js'
import { canTraverse, DEFAULT_STAGING_ROOT, ensureStagingRoot, removeTree, type BuildUser } from './workspace.js'

/**
 * A bubblewrap sandbox for a host tool that reads untrusted files: the mesh
 * diagnosis runs diffoscope, and its dozens of unpackers, on artifacts a
 * hostile builder may have crafted. The tool sees the host's system
 * read-only (as a build does, without network files), its input files
 * read-only where it is told, a private /tmp bounded in size, and nothing
 * else: no network, no home, no environment, no descriptor of the node
 * (it is started by a spawn helper, which closed what it inherited), its
 * own pid namespace, a bound on each process's data; a root node runs it
 * as an unprivileged user. git for watches runs here too, given the network
 * and its work directory to write (then as the node's user, without
 * capabilities: see ToolRunOptions).
 */

/** A host file the tool reads, and where it appears inside (an absolute path). */
export interface ToolInput {
  path: string
  at: string
}

export interface ToolRunOptions {
  /** The tool's command line, with paths as the sandbox sees them. */
  argv: string[]
  inputs: ToolInput[]
  /** Bound on the private /tmp (a tmpfs: memory). */
  tmpBytes: number
  /** Data (RLIMIT_DATA: heap and private mappings) each process in the sandbox may take. */
  dataBytes: number
  /**
   * A host directory the tool may write, and where it appears inside. A
   * tool given one runs as the node's user (without capabilities, in a user
   * namespace of its own), so that it can reach and write the directory:
   * the directory and the read-only system are all it sees of the host.
   */
  writable?: ToolInput
  /** Share the host's network (and its resolver and CA certificates), e.g. for git's fetch; default none. */
  network?: boolean
  /** Variables added to the tool's environment (HOME, PATH, LANG, TZ, TMPDIR are set already). */
  env?: Record<string, string>
}

/** One run: stdout, stderr, whether the sandbox started, its exit, and a kill of its whole pid namespace. */
export interface ToolRun {
  readonly stdout: Readable
  readonly stderr: Readable
  /** True once the sandbox is set up and the tool about to start; false if it never was (bwrap's error is on stderr). */
  readonly started: Promise<boolean>
  /** The tool's exit as bwrap reports it (a signal n shows as 128+n); code null after a spawn error. */
  readonly exited: Promise<StepExit>
  readonly spawnError: () => Error | undefined
  /** SIGKILL everything in the sandbox and wait until it is gone. */
  kill: () => Promise<boolean>
  /** After the exit: remove what was staged. */
  dispose: () => Promise<void>
}

/** The unprivileged user a root node runs tools as (the executor's default build user). */
const TOOL_USER: BuildUser = { uid: 65534, gid: 65534 }

export class ToolSandbox {
  private readonly user = process.getuid?.() === 0 ? TOOL_USER : undefined

  constructor (
    private readonly bwrap: string,
    private readonly features: BwrapFeatures,
    private readonly layout: HostLayout,
    /** The system call filter, as the steps' (seccomp.ts). */
    private readonly seccomp: Buffer,
    private readonly stagingRoot = DEFAULT_STAGING_ROOT
  ) {}

  async start (options: ToolRunOptions): Promise<ToolRun> {
    const user = options.writable === undefined ? this.user : undefined
    const staged = await this.stage(options.inputs, user)
    const args = this.args(options, staged.inputs)
    // From the node's shared spawn helper (stopped 30 s after its last process: an idle node holds none).
    const step = new StepProcess([this.bwrap, ...args], {
      cwd: '/',
      env: { PATH: SYSTEM_PATH, LANG: 'C' },
      ...(user === undefined ? {} : { user }),
      sandboxInfo: true,
      stderr: true,
      seccomp: this.seccomp,
      spawn: spawnOnHost
    })
    return {
      stdout: step.output,
      stderr: step.errors!,
      started: step.started,
      exited: step.exited,
      spawnError: () => step.spawnError,
      kill: async () => await step.kill(),
      dispose: async () => {
        if (staged.dir !== undefined) await removeTree(staged.dir)
      }
    }
  }

  /**
   * A root node's tool runs as an unprivileged user, who usually cannot reach
   * the node's files (its home is 0700): those are copied to a directory it
   * can reach (root's, 0711, under the staging root), readable but not
   * writable, and removed after the run.
   */
  private async stage (inputs: ToolInput[], user: BuildUser | undefined): Promise<{ inputs: ToolInput[], dir?: string }> {
    if (user === undefined) return { inputs }
    let dir: string | undefined
    const result: ToolInput[] = []
    try {
      for (const [index, input] of inputs.entries()) {
        if (await readableBy(input.path, user)) {
          result.push(input)
          continue
        }
        if (dir === undefined) {
          // Named as a run's staging is, so that a later node removes what a crash left.
          dir = await mkdtemp(join(await ensureStagingRoot(this.stagingRoot, user), `run-${ownTag()}-`))
          await chmod(dir, 0o711)
        }
        const copy = join(dir, String(index))
        await copyFile(input.path, copy, fsConstants.COPYFILE_FICLONE)
        const executable = ((await stat(input.path)).mode & 0o111) !== 0
        await chmod(copy, executable ? 0o555 : 0o444)
        result.push({ path: copy, at: input.at })
      }
    } catch (err) {
      if (dir !== undefined) await removeTree(dir).catch(() => {})
      throw new Error(`cannot stage the tool's files for its sandbox user (uid ${user.uid}): ${describeError(err)}`, { cause: err })
    }
    return dir === undefined ? { inputs: result } : { inputs: result, dir }
  }

  private args (options: ToolRunOptions, inputs: ToolInput[]): string[] {
    const args = ['--unshare-all', '--unshare-user']
    if (options.network === true) args.push('--share-net')
    if (this.features.disableUserns) args.push('--disable-userns')
    args.push('--die-with-parent', '--new-session', '--info-fd', String(INFO_FD), ...seccompArgs())
    args.push('--uid', String(SANDBOX_BUILD_UID), '--gid', String(SANDBOX_BUILD_UID), '--hostname', 'buildhaus')
    args.push(...hostSystemArgs(this.layout, options.network === true))
    args.push('--dev', '/dev', '--proc', '/proc', '--size', String(options.tmpBytes), '--tmpfs', '/tmp')
    for (const input of inputs) args.push('--ro-bind', input.path, input.at)
    if (options.writable !== undefined) args.push('--bind', options.writable.path, options.writable.at)
    // The root and /dev are tmpfs: writable and unbounded unless made read-only.
    args.push('--remount-ro', '/dev', '--remount-ro', '/', '--chdir', '/tmp', '--clearenv')
    const env = { HOME: '/tmp', PATH: SANDBOX_PATH, LANG: 'C.UTF-8', TZ: 'UTC', TMPDIR: '/tmp', ...options.env }
    for (const [name, value] of Object.entries(env)) args.push('--setenv', name, value)
    // The inner shell bounds every process's data (the tool's children inherit it), tells the node the
    // sandbox started, and closes bwrap's descriptors (3, 4) before the tool. -d is in KiB (POSIX, dash).
    const inner = `ulimit -d ${Math.max(1, Math.floor(options.dataBytes / 1024))} && ${INNER_WRAPPER}`
    return [...args, '--', '/bin/sh', '-c', inner, 'buildhaus-tool', ...options.argv]
  }
}

/** Whether `user` may read `path` (every directory above it traversable, the file readable). */
async function readableBy (path: string, user: BuildUser): Promise<boolean> {
  try {
    if (!await canTraverse(dirname(path), user)) return false
    const stats = await stat(path)
    const bit = stats.uid === user.uid ? 0o400 : stats.gid === user.gid ? 0o040 : 0o004
    return (stats.mode & bit) !== 0
  } catch {
    return false
  }
}

const sandboxes = new Map<string, Promise<ToolSandbox | { unavailable: string }>>()

/**
 * The sandbox for tools, or why there is none: bwrap missing, not running,
 * or too old to bound /tmp. A bwrap found usable is remembered (default:
 * found on the system PATH, as the executor finds it); one that is not is
 * probed again next time, so that installing it needs no restart.
 */
export async function toolSandbox (bwrapPath?: string): Promise<ToolSandbox | { unavailable: string }> {
  const key = bwrapPath ?? ''
  let found = sandboxes.get(key)
  if (found === undefined) {
    found = probe(bwrapPath)
    sandboxes.set(key, found)
  }
  const sandbox = await found
  if (!(sandbox instanceof ToolSandbox) && sandboxes.get(key) === found) sandboxes.delete(key)
  return sandbox
}

async function probe (bwrapPath: string | undefined): Promise<ToolSandbox | { unavailable: string }> {
  const bwrap = bwrapPath === undefined ? await findTool('bwrap') : await access(bwrapPath, fsConstants.X_OK).then(() => bwrapPath, () => undefined)
  if (bwrap === undefined) return { unavailable: bwrapPath === undefined ? 'bubblewrap (bwrap) is not installed' : `there is no bubblewrap at ${bwrapPath}` }
  const help = await probeOutput(bwrap, ['--help'])
  if (help === undefined) return { unavailable: `${bwrap} does not run` }
  const features = bwrapFeatures(help)
  // Without --size, /tmp would be an unbounded tmpfs: a crafted archive could fill the host's memory.
  if (!features.size) return { unavailable: `${bwrap} is older than bubblewrap 0.8 and cannot bound /tmp (--size)` }
  // Not without the system call filter: the tool parses a stranger's files, as a build runs a stranger's code.
  const seccomp = sandboxSeccomp(features.seccomp)
  if (!('program' in seccomp)) return { unavailable: `it would have no seccomp filter: ${seccomp.missing}` }
  return new ToolSandbox(bwrap, features, await detectHostLayout(), seccomp.program)
}
