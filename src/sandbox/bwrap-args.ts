import { lstat, readlink, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { MiB } from './limits.js'
import { INFO_FD, INNER_WRAPPER, SECCOMP_FD, WARM_INNER_WRAPPER } from './step-process.js'
import type { SandboxLimits } from './types.js'

/** Where the workspace appears inside the sandbox: the same path on every machine, for reproducible builds. */
export const SANDBOX_WORKSPACE = '/build'
export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
/** The unprivileged uid (and gid) a build has inside the sandbox when it did not ask for root. */
export const SANDBOX_BUILD_UID = 1000

/** What of the host's file system a sandbox sees, found once when the executor is made. */
export interface HostLayout {
  /** Top-level system directories: bound read-only, or recreated as the symlinks they are (merged /usr). */
  system: Array<{ path: string, link?: string }>
  /** /etc entries a toolchain needs, bound read-only when present. */
  etc: string[]
  /** /etc entries only a job with network gets (name resolution, CA certificates). */
  etcNetwork: string[]
  /** Extra host paths bound read-only at the same place (e.g. /opt toolchains), from the executor options. */
  extra: string[]
}

export interface BwrapFeatures {
  /** `--size` for tmpfs (bubblewrap ≥ 0.8). */
  size: boolean
  /** `--disable-userns` (bubblewrap ≥ 0.8). */
  disableUserns: boolean
  /** `--seccomp FD`: a system call filter loaded before the command (seccomp.ts). */
  seccomp: boolean
}

const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']
/**
 * Only what toolchains need (each bind costs bwrap ~0.1 ms per step): the
 * dynamic loader's cache, Debian's alternatives (cc → gcc), name service
 * switch and hosts (localhost), the distribution's name. No localtime: TZ is
 * UTC. More with the executor's extraReadOnly option.
 */
const ETC = [
  '/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/nsswitch.conf', '/etc/hosts', '/etc/os-release'
]
const ETC_NETWORK = [
  '/etc/resolv.conf', '/etc/host.conf', '/etc/gai.conf', '/etc/services', '/etc/protocols',
  '/etc/ssl', '/etc/ca-certificates', '/etc/ca-certificates.conf', '/etc/pki', '/etc/crypto-policies'
]

async function exists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch {
    return false
  }
}

export async function detectHostLayout (extra: string[] = []): Promise<HostLayout> {
  const system: HostLayout['system'] = []
  for (const path of SYSTEM_DIRS) {
    try {
      const stats = await lstat(path)
      if (stats.isSymbolicLink()) system.push({ path, link: await readlink(path) })
      else if (stats.isDirectory()) system.push({ path })
    } catch {
      // absent on this distribution
    }
  }
  // JDKs keep their configuration under /etc/java-<n>-… on Debian.
  const java = (await readdir('/etc').catch(() => [])).filter((name) => name.startsWith('java')).map((name) => join('/etc', name))
  const etc = []
  for (const path of [...ETC, ...java]) if (await exists(path)) etc.push(path)
  const etcNetwork = []
  for (const path of ETC_NETWORK) if (await exists(path)) etcNetwork.push(path)
  return { system, etc, etcNetwork, extra }
}

export interface BwrapPlan {
  layout: HostLayout
  features: BwrapFeatures
  /** Host paths of the run's workspace, its passwd/group, and (without `--size`) its /tmp. */
  buildDir: string
  etcDir: string
  tmpDir?: string
  network: boolean
  insideUid: number
  limits: SandboxLimits
  sourceDateEpoch?: number
  /** Run in an environment: this root directory is bound read-only as `/` instead of the host's system directories and /etc files. */
  rootfs?: string
  /**
   * Set RLIMIT_NPROC inside the sandbox with this prlimit: there it counts
   * only the sandbox's own processes (the count is per user namespace), where
   * set outside it would count every process of the node's uid.
   */
  processBackstop?: { prlimit: string, max: number }
  /** Load the system call filter, which the step's spawn feeds on SECCOMP_FD (seccomp.ts). */
  seccomp?: boolean
}

/**
 * bwrap's arguments for one step: every namespace new (the network too
 * unless the job may use it), no user namespaces inside, a root of nothing
 * but read-only system directories, chosen /etc files, a synthetic passwd,
 * minimal /dev and /proc, bounded tmpfs /tmp and /dev/shm, and the workspace
 * at /build; then the root and /dev remounted read-only, the environment
 * cleared and set anew. In an environment (`rootfs`), its root is `/`
 * instead (read-only, with a private /var/tmp too), and of the host's files
 * only resolv.conf, for a job with network.
 */
export function bwrapArgs (plan: BwrapPlan, run: string): string[] {
  return [...sandboxArgs(plan), ...innerCommand(plan, INNER_WRAPPER), run]
}

/**
 * bwrap's arguments for a warm step (see warm-step.ts): the same as
 * bwrapArgs's but for the inner shell, and without the command, which the
 * inner shell reads from stdin and appends.
 */
export function warmBwrapArgs (plan: BwrapPlan): string[] {
  return [...sandboxArgs(plan), ...innerCommand(plan, WARM_INNER_WRAPPER)]
}

/** After bwrap's `--`: the inner shell, the process backstop, and `/bin/sh -c` for the command. */
function innerCommand (plan: BwrapPlan, wrapper: string): string[] {
  const nproc = plan.processBackstop === undefined ? [] : [plan.processBackstop.prlimit, `--nproc=${plan.processBackstop.max}`, '--']
  return ['--', '/bin/sh', '-c', wrapper, 'buildhaus-step', ...nproc, '/bin/sh', '-c']
}

/**
 * The host's system as a sandbox sees it: the system directories read-only
 * (merged-/usr symlinks recreated as symlinks), the extra paths, the chosen
 * /etc files, and with network the name service and CA files. Also used to
 * confine host tools such as diffoscope (tool-sandbox.ts).
 */
export function hostSystemArgs (layout: HostLayout, network: boolean): string[] {
  const args: string[] = []
  for (const { path, link } of layout.system) {
    if (link !== undefined) args.push('--symlink', link, path)
    else args.push('--ro-bind', path, path)
  }
  for (const path of layout.extra) args.push('--ro-bind', path, path)
  for (const path of layout.etc) args.push('--ro-bind', path, path)
  if (network) for (const path of layout.etcNetwork) args.push('--ro-bind', path, path)
  return args
}

/** bwrap's option that loads the system call filter from the descriptor the spawn feeds it on. */
export function seccompArgs (): string[] {
  return ['--seccomp', String(SECCOMP_FD)]
}

/** What this bwrap offers, from its `--help`. */
export function bwrapFeatures (help: string): BwrapFeatures {
  return { size: help.includes('--size'), disableUserns: help.includes('--disable-userns'), seccomp: help.includes('--seccomp') }
}

/** bwrap's options: the sandbox itself, up to its command. */
function sandboxArgs (plan: BwrapPlan): string[] {
  const { layout, features, limits } = plan
  const args = ['--unshare-all', '--unshare-user']
  if (plan.network) args.push('--share-net')
  if (features.disableUserns) args.push('--disable-userns')
  args.push('--die-with-parent', '--new-session', '--info-fd', String(INFO_FD))
  if (plan.seccomp === true) args.push(...seccompArgs())
  args.push('--uid', String(plan.insideUid), '--gid', String(plan.insideUid), '--hostname', 'buildhaus')
  if (plan.rootfs !== undefined) {
    args.push('--ro-bind', plan.rootfs, '/')
    if (plan.network && layout.etcNetwork.includes('/etc/resolv.conf')) args.push('--ro-bind', '/etc/resolv.conf', '/etc/resolv.conf')
  } else {
    args.push(...hostSystemArgs(layout, plan.network))
  }
  args.push('--ro-bind', join(plan.etcDir, 'passwd'), '/etc/passwd', '--ro-bind', join(plan.etcDir, 'group'), '/etc/group')
  args.push('--dev', '/dev', '--proc', '/proc')
  const tmpBytes = String(Math.min(limits.workspaceMb, limits.memoryMb) * MiB)
  if (features.size) {
    args.push('--size', tmpBytes, '--tmpfs', '/tmp', '--size', tmpBytes, '--tmpfs', '/dev/shm')
    if (plan.rootfs !== undefined) args.push('--size', tmpBytes, '--tmpfs', '/var/tmp')
  } else {
    // An unbounded tmpfs would let a job fill the host's memory: use a directory counted with the workspace.
    args.push('--bind', plan.tmpDir!, '/tmp')
    if (plan.rootfs !== undefined) args.push('--bind', plan.tmpDir!, '/var/tmp')
  }
  args.push('--bind', plan.buildDir, SANDBOX_WORKSPACE)
  // /dev is a tmpfs, and so is the root without an environment: writable and unbounded unless made read-only.
  args.push('--remount-ro', '/dev')
  if (plan.rootfs === undefined) args.push('--remount-ro', '/')
  args.push('--chdir', SANDBOX_WORKSPACE, '--clearenv')
  const user = plan.insideUid === 0 ? 'root' : 'build'
  const env: Record<string, string> = {
    HOME: '/tmp',
    PATH: SANDBOX_PATH,
    LANG: 'C.UTF-8',
    TZ: 'UTC',
    TMPDIR: '/tmp',
    USER: user,
    LOGNAME: user,
    BUILDHAUS: '1',
    // fakeroot tries the real chown and forgives only EPERM; in the sandbox's user namespace, where
    // root is not mapped, the kernel answers EINVAL, and `chown 0:0` under fakeroot (dpkg-buildpackage,
    // debhelper) failed. Without the try it only fakes, as on a buildd, where the real call always fails.
    FAKEROOTDONTTRYCHOWN: '1'
  }
  if (plan.sourceDateEpoch !== undefined) env.SOURCE_DATE_EPOCH = String(plan.sourceDateEpoch)
  for (const [name, value] of Object.entries(env)) args.push('--setenv', name, value)
  return args
}
