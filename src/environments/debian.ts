import { readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MANIFEST_VERSION } from './constants.js'
import { describeFailure, runCommand, type CommandResult } from './command.js'
import { clearSignedText, parseDeb822 } from './deb822.js'
import { ArchiveUnreachableError, EnvironmentCreationError, UnknownPackagesError } from './errors.js'
import { packageEntries, type EnvironmentManifest } from './manifest.js'
import type { DebianRelease } from './names.js'
import { installedPackages, prepareRoot, readInRoot } from './root-fs.js'

/**
 * Debian environments, made on this machine from Debian's archive: a base
 * with mmdebstrap (variant minbase: the Essential set and apt, nothing
 * else), and a derived one by installing a job's packages with apt into a
 * copy of a base.
 */

export interface MakeOptions {
  /** Each line the tools print, as they print it. */
  onLine?: (line: string) => void
  signal?: AbortSignal
  timeoutMs: number
}

/** What the archive's Release file says about itself. */
export interface ReleaseInfo {
  origin?: string
  codename?: string
  suite?: string
  version?: string
  date?: string
}

/** The fields of a Release (or clear-signed InRelease) file that a manifest records. */
export function parseRelease (text: string): ReleaseInfo {
  const fields = parseDeb822(clearSignedText(text))[0] ?? new Map<string, string>()
  const info: ReleaseInfo = {}
  for (const key of ['origin', 'codename', 'suite', 'version', 'date'] as const) {
    const value = fields.get(key)
    if (value !== undefined && value !== '') info[key] = value
  }
  return info
}

/** apt's messages when it cannot reach the archive at all. */
const UNREACHABLE = /Could not resolve|Temporary failure resolv|Failed to fetch|Could not connect|Connection (refused|timed out|failed)|Unable to connect|No route to host|Network is unreachable|Unable to fetch some archives|Release' does not have a Release file/i

function unreachable (result: CommandResult): boolean {
  return result.tail.some((line) => UNREACHABLE.test(line))
}

/** apt options every run gets: no translations to download. */
const APT_OPTIONS = ['Acquire::Languages "none"']

/**
 * Make a Debian base with mmdebstrap into `dir` (which must not exist), from
 * `mirror`, and return its manifest. As root, mmdebstrap works in a chroot;
 * otherwise it needs user namespaces with subordinate ids (its unshare mode).
 */
export async function makeDebianBase (name: string, release: DebianRelease, mirror: string, dir: string, options: MakeOptions): Promise<EnvironmentManifest> {
  const args = [
    '--variant=minbase',
    '--format=directory',
    ...APT_OPTIONS.map((option) => `--aptopt=${option}`),
    // No fsync for every unpacked file: a making that crashes is thrown away anyway.
    '--dpkgopt=force-unsafe-io',
    // Keep the lists for a moment: their Release file says where and when the base is from.
    '--skip=cleanup/apt/lists',
    release.suite,
    dir,
    mirror
  ]
  options.onLine?.(`mmdebstrap ${args.join(' ')}`)
  const result = await runCommand('mmdebstrap', args, { ...options, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' } })
  if (result.code !== 0) {
    if (unreachable(result)) throw new ArchiveUnreachableError(`Debian's archive at ${mirror} is unreachable (${describeFailure(result, 2)})`)
    throw new EnvironmentCreationError(`mmdebstrap could not make ${name} (${release.suite}) from ${mirror}: ${describeFailure(result)}${result.code === null ? '' : '; is mmdebstrap installed (apt-get install mmdebstrap), and is this node root?'}`)
  }
  const info = await releaseOf(dir, release.suite)
  await tidy(dir)
  await prepareRoot(dir)
  const { packages, architecture } = await installedPackages(dir)
  if (packages.size === 0 || architecture === undefined) throw new EnvironmentCreationError(`mmdebstrap made ${dir}, but it has no dpkg database`)
  return {
    v: MANIFEST_VERSION,
    name,
    origin: info.origin ?? 'Debian',
    suite: info.codename ?? release.suite,
    date: info.date ?? 'unknown',
    architecture,
    packages: packageEntries(packages)
  }
}

/** The Release file mmdebstrap fetched for the suite (from the lists it was told to keep). */
async function releaseOf (root: string, suite: string): Promise<ReleaseInfo> {
  const lists = join(root, 'var', 'lib', 'apt', 'lists')
  const names = await readdir(lists).catch(() => [] as string[])
  const candidates = names.filter((n) => n.endsWith(`_dists_${suite}_InRelease`) || n.endsWith(`_dists_${suite}_Release`))
  for (const file of candidates.sort()) {
    const text = await readInRoot(root, `/var/lib/apt/lists/${file}`)
    if (text !== undefined) return parseRelease(text)
  }
  return {}
}

/** Remove what differs from one making to the next and no build needs: package lists, apt's caches, logs, the host's name. */
async function tidy (root: string): Promise<void> {
  const lists = join(root, 'var', 'lib', 'apt', 'lists')
  for (const name of await readdir(lists).catch(() => [] as string[])) {
    if (name !== 'partial' && name !== 'lock') await rm(join(lists, name), { recursive: true, force: true })
  }
  for (const path of ['var/cache/apt/pkgcache.bin', 'var/cache/apt/srcpkgcache.bin', 'var/log/apt', 'var/log/dpkg.log', 'var/log/alternatives.log']) {
    await rm(join(root, path), { recursive: true, force: true })
  }
  await writeFile(join(root, 'etc', 'hostname'), 'buildhaus\n')
}

/**
 * The script that installs a job's packages, run as root inside a copy of
 * the base with the network: update the lists (exit 90: the archive is
 * unreachable), check every name (exit 91, printing the unknown ones), then
 * install without recommends (exit 92).
 */
const INSTALL_SCRIPT = `
apt-get -q -o Acquire::Languages=none update || exit 90
ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || exit 90
missing=""
for p in "$@"; do apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then echo "buildhaus: unknown packages:$missing"; exit 91; fi
apt-get -q -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io -o Dpkg::Use-Pty=0 install "$@" || exit 92
apt-get clean
`

export interface DeriveInput {
  /** The base's root, copied (never changed). */
  baseRoot: string
  base: EnvironmentManifest
  baseHash: string
  /** Sorted, checked package names. */
  packages: string[]
  /** Where the derived root goes (must not exist). */
  dir: string
}

/**
 * Install `packages` into a copy of a Debian base and return the derived
 * manifest. Needs root: apt and dpkg run as root (with every capability,
 * in their own mount and pid namespaces, on the copy only) with the host's
 * network, to fetch from the archive the base names in its sources.
 * Unknown packages are an UnknownPackagesError, a dead archive an
 * ArchiveUnreachableError.
 */
export async function deriveDebian (input: DeriveInput, options: MakeOptions): Promise<EnvironmentManifest> {
  if (process.getuid?.() !== 0) throw new EnvironmentCreationError('installing packages into an environment needs root (apt and dpkg run as root in a copy of it); run this node as root')
  const copy = await runCommand('cp', ['-a', '--reflink=auto', '--', input.baseRoot, input.dir], { ...options, timeoutMs: options.timeoutMs })
  if (copy.code !== 0) throw new EnvironmentCreationError(`cannot copy the environment ${input.base.name}: ${describeFailure(copy)}`)
  const args = [
    '--bind', input.dir, '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--perms', '1777', '--tmpfs', '/tmp',
    '--ro-bind', '/etc/resolv.conf', '/etc/resolv.conf',
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    '--die-with-parent', '--new-session',
    '--cap-add', 'ALL',
    '--clearenv',
    '--setenv', 'PATH', '/usr/sbin:/usr/bin:/sbin:/bin',
    '--setenv', 'LANG', 'C.UTF-8',
    '--setenv', 'DEBIAN_FRONTEND', 'noninteractive',
    '--setenv', 'HOME', '/root',
    '--', '/bin/sh', '-c', INSTALL_SCRIPT, 'buildhaus-install', ...input.packages
  ]
  options.onLine?.(`apt-get install ${input.packages.join(' ')} (into a copy of ${input.base.name})`)
  const result = await runCommand('bwrap', args, options)
  if (result.code === 90 || (result.code !== 0 && unreachable(result))) {
    throw new ArchiveUnreachableError(`the archive of ${input.base.name} is unreachable, so its packages cannot be installed (${describeFailure(result, 2)})`)
  }
  if (result.code === 91) {
    const line = result.tail.find((l) => l.startsWith('buildhaus: unknown packages:')) ?? ''
    const unknown = line.slice('buildhaus: unknown packages:'.length).trim().split(/\s+/).filter((p) => p !== '')
    throw new UnknownPackagesError(unknown, `${unknown.length === 1 ? 'the package' : 'the packages'} ${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not in ${input.base.name}'s archive`)
  }
  if (result.code !== 0) throw new EnvironmentCreationError(`apt could not install ${input.packages.join(', ')} into ${input.base.name}: ${describeFailure(result)}`)
  await tidy(input.dir)
  await prepareRoot(input.dir)
  const { packages, architecture } = await installedPackages(input.dir)
  const { packages: _old, ...fields } = input.base
  return {
    ...fields,
    architecture: architecture ?? input.base.architecture,
    base: input.baseHash,
    requested: [...input.packages],
    packages: packageEntries(packages)
  }
}
