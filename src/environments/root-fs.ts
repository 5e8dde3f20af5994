import { constants as fsConstants } from 'node:fs'
import { chmod, lstat, mkdir, open, readdir, readlink, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BOUND_FILES, MAX_PACKAGE_DB_BYTES, MAX_SMALL_FILE_BYTES, MOUNT_POINTS } from './constants.js'
import { EnvironmentCreationError } from './errors.js'
import { apkInstalled, dpkgInstalled } from './package-db.js'

/**
 * Reading and preparing a root file system that may come from a stranger's
 * image: every path is resolved the way it would be inside the root (a
 * symlink to `/etc/x` means `<root>/etc/x`, `..` stops at the root), so
 * nothing outside the root is ever read or written through its links.
 */

/** Symlinks followed in one lookup before giving up (Linux allows 40). */
const MAX_LINKS = 40

/**
 * The host path of `path` inside `root`, resolving symlinks as if `root`
 * were `/`; undefined when a component is missing or the links loop.
 */
export async function resolveInRoot (root: string, path: string): Promise<string | undefined> {
  const pending = path.split('/').filter((c) => c !== '' && c !== '.')
  const resolved: string[] = []
  let links = 0
  while (pending.length > 0) {
    const component = pending.shift()!
    if (component === '..') {
      resolved.pop()
      continue
    }
    const candidate = join(root, ...resolved, component)
    let stats
    try {
      stats = await lstat(candidate)
    } catch {
      return undefined
    }
    if (!stats.isSymbolicLink()) {
      resolved.push(component)
      continue
    }
    if (++links > MAX_LINKS) return undefined
    const target = await readlink(candidate)
    if (target.startsWith('/')) resolved.length = 0
    pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'))
  }
  return join(root, ...resolved)
}

/** The text of a regular file inside `root` (links resolved inside it), at most `maxBytes`; undefined when absent. */
export async function readInRoot (root: string, path: string, maxBytes = MAX_SMALL_FILE_BYTES): Promise<string | undefined> {
  const resolved = await resolveInRoot(root, path)
  if (resolved === undefined) return undefined
  let handle
  try {
    handle = await open(resolved, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)
  } catch {
    return undefined
  }
  try {
    const stats = await handle.stat()
    if (!stats.isFile()) return undefined
    if (stats.size > maxBytes) throw new EnvironmentCreationError(`${path} in the environment is ${stats.size} bytes, more than the ${maxBytes} read`)
    const buffer = Buffer.alloc(stats.size)
    const { bytesRead } = await handle.read(buffer, 0, stats.size, 0)
    return buffer.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
}

/** The system's name as its os-release says (`Debian GNU/Linux 12 (bookworm)`), or undefined. */
export async function osReleaseName (root: string): Promise<string | undefined> {
  const text = await readInRoot(root, '/etc/os-release') ?? await readInRoot(root, '/usr/lib/os-release')
  if (text === undefined) return undefined
  const fields = new Map<string, string>()
  for (const line of text.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (match !== null) fields.set(match[1]!, match[2]!.replace(/^(["'])(.*)\1$/, '$2'))
  }
  return fields.get('PRETTY_NAME') ?? fields.get('NAME')
}

/** What the root's package manager says is installed: dpkg's status, else apk's database, else nothing known. */
export async function installedPackages (root: string): Promise<{ packages: Map<string, string>, architecture?: string, manager: 'dpkg' | 'apk' | 'none' }> {
  const status = await readInRoot(root, '/var/lib/dpkg/status', MAX_PACKAGE_DB_BYTES)
  if (status !== undefined) {
    const native = (await readInRoot(root, '/var/lib/dpkg/arch'))?.split('\n')[0]?.trim()
    return { ...dpkgInstalled(status, native !== undefined && native !== '' ? native : undefined), manager: 'dpkg' }
  }
  const apk = await readInRoot(root, '/lib/apk/db/installed', MAX_PACKAGE_DB_BYTES)
  if (apk !== undefined) return { ...apkInstalled(apk), manager: 'apk' }
  return { packages: new Map(), manager: 'none' }
}

async function kindOf (path: string): Promise<'dir' | 'file' | 'link' | 'other' | 'missing'> {
  try {
    const stats = await lstat(path)
    return stats.isSymbolicLink() ? 'link' : stats.isDirectory() ? 'dir' : stats.isFile() ? 'file' : 'other'
  } catch {
    return 'missing'
  }
}

/** Every directory above `relative` inside root must be a real directory (never a link bubblewrap would follow). */
async function ensureRealParents (root: string, relative: string): Promise<void> {
  const parts = relative.split('/')
  for (let i = 1; i < parts.length; i++) {
    const dir = join(root, ...parts.slice(0, i))
    const kind = await kindOf(dir)
    if (kind === 'missing') await mkdir(dir, { mode: 0o755 })
    else if (kind !== 'dir') throw new EnvironmentCreationError(`/${parts.slice(0, i).join('/')} in the environment is not a directory, so /${relative} cannot be mounted`)
  }
}

/**
 * Make a root ready to be a sandbox's read-only `/`: the mount points
 * (/build, /tmp, /var/tmp, /dev, /proc) real directories, the files bound
 * over (passwd, group, resolv.conf) real files, an /etc/hosts naming
 * localhost, and a /bin/sh. A link where a mount point must be is replaced:
 * bubblewrap must never follow an image's link while it sets up. No file
 * keeps a setuid or setgid bit: builds run with no new privileges anyway,
 * and the root lies on the host, where any user who can reach it could run
 * them.
 */
export async function prepareRoot (root: string): Promise<void> {
  await chmod(root, 0o755)
  await dropPrivilegeBits(root)
  for (const point of MOUNT_POINTS) {
    await ensureRealParents(root, point)
    const path = join(root, point)
    const kind = await kindOf(path)
    if (kind !== 'dir') {
      if (kind !== 'missing') await rm(path, { force: true, recursive: true })
      await mkdir(path, { mode: 0o755 })
    }
    // A mount point is covered in every sandbox; on disk nobody but root writes to it.
    await chmod(path, 0o755)
  }
  for (const file of BOUND_FILES) {
    await ensureRealParents(root, file)
    const path = join(root, file)
    const kind = await kindOf(path)
    if (kind === 'file' && file !== 'etc/resolv.conf') continue
    if (kind !== 'missing') await rm(path, { force: true, recursive: true })
    // resolv.conf is empty: a job with network gets the host's bound over it.
    await writeFile(path, '', { mode: 0o644 })
  }
  const hosts = join(root, 'etc', 'hosts')
  if (await kindOf(hosts) === 'missing') await writeFile(hosts, '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n', { mode: 0o644 })
  const shell = await resolveInRoot(root, '/bin/sh')
  if (shell === undefined || await kindOf(shell) !== 'file') throw new EnvironmentCreationError('the environment has no /bin/sh, which every build step runs with')
}

/** Clear setuid and setgid on every file under `root` (links are never followed). */
async function dropPrivilegeBits (root: string): Promise<void> {
  const pending = [root]
  while (pending.length > 0) {
    const dir = pending.pop()!
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        pending.push(path)
      } else if (entry.isFile()) {
        const { mode } = await lstat(path)
        if ((mode & 0o6000) !== 0) await chmod(path, mode & 0o1777)
      }
    }
  }
}
