import { chmodSync, lchownSync, readdirSync } from 'node:fs'
import { chmod, lchown, lstat, mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { EnvironmentError } from '../util/errors.js'
import { leftByDeadNode, ownTag } from './proc.js'
import { removeTreeAtAnyDepth } from './tree-walk.js'

/** The unprivileged user a root node drops to before starting bubblewrap. */
export interface BuildUser { uid: number, gid: number }

/**
 * The directories of one run:
 *   runDir/               under the request's workRoot, the node's own
 *     artifacts/          copies of collected artifacts, for the caller to move
 *   stageDir/             runDir itself, or a directory under the staging root
 *     build/              the workspace (the unpacked source), /build in the sandbox
 *     etc/                passwd and group as the sandbox sees them
 */
export interface Workspace {
  runDir: string
  stageDir: string
  buildDir: string
  etcDir: string
  artifactsDir: string
  /**
   * Hand the unpacked workspace to the build user (and close it to others).
   * `entries`: how many the unpack wrote; a tree of at most
   * DIRECT_HANDOVER_ENTRIES is handed over with direct system calls.
   */
  handOver: (entries?: number) => Promise<void>
  remove: () => Promise<void>
}

export interface WorkspaceOptions {
  /** Set when the node is root and builds run as this user. */
  buildUser?: BuildUser
  /** Where to stage workspaces the build user cannot reach under workRoot. */
  stagingRoot: string
}

/**
 * Make a run's directories. A root node's build user must be able to reach
 * the workspace by path (bubblewrap binds it by path, as that user), and the
 * node's home is usually private (0700): then the workspace is staged under
 * `stagingRoot` (root-owned, 0711: others may pass through, not list) instead
 * of under workRoot. The artifact copies always stay under workRoot, on the
 * same file system as the node's blob store.
 */
export async function createWorkspace (workRoot: string, options: WorkspaceOptions): Promise<Workspace> {
  await mkdir(workRoot, { recursive: true })
  const runDir = await mkdtemp(join(workRoot, 'run-'))
  const cleanup: string[] = [runDir]
  try {
    const artifactsDir = join(runDir, 'artifacts')
    await mkdir(artifactsDir, { mode: 0o700 })
    let stageDir = runDir
    const user = options.buildUser
    if (user !== undefined) {
      await chmod(runDir, 0o711)
      if (!await canTraverse(runDir, user)) {
        const stagingRoot = await ensureStagingRoot(options.stagingRoot, user)
        // The node's pid in the name lets a later node clear what a crashed one left.
        stageDir = await mkdtemp(join(stagingRoot, `run-${ownTag()}-`))
        cleanup.push(stageDir)
        await chmod(stageDir, 0o711)
      }
    }
    const buildDir = join(stageDir, 'build')
    const etcDir = join(stageDir, 'etc')
    // A root node's build user may pass through the (root's, empty) workspace until it is handed over:
    // a sandbox made ahead (a warm step) binds it and starts in it before the source is unpacked.
    await mkdir(buildDir, { mode: user === undefined ? 0o700 : 0o711 })
    await mkdir(etcDir, { mode: 0o755 })
    return {
      runDir,
      stageDir,
      buildDir,
      etcDir,
      artifactsDir,
      handOver: async (entries) => {
        if (user === undefined) return
        const direct = entries !== undefined && entries <= DIRECT_HANDOVER_ENTRIES
        await chownTree(buildDir, user, direct)
        if (direct) chmodSync(buildDir, 0o700)
        else await chmod(buildDir, 0o700)
      },
      remove: async () => {
        // Every directory, even when one fails: the first failure is reported, the node's next start retries.
        let failure: unknown
        for (const dir of cleanup) await removeTree(dir).catch((err: unknown) => { failure ??= err })
        if (failure !== undefined) throw failure
      }
    }
  } catch (err) {
    for (const dir of cleanup) await removeTree(dir).catch(() => {})
    throw err
  }
}

/** Whether `user` (with no supplementary groups) can pass through `dir` and every directory above it. */
export async function canTraverse (dir: string, user: BuildUser): Promise<boolean> {
  let here = dir
  while (true) {
    const stats = await stat(here)
    const allowed = stats.uid === user.uid
      ? (stats.mode & 0o100) !== 0
      : stats.gid === user.gid ? (stats.mode & 0o010) !== 0 : (stats.mode & 0o001) !== 0
    if (!allowed) return false
    const parent = dirname(here)
    if (parent === here) return true
    here = parent
  }
}

/**
 * Remove staged workspaces of nodes that are no longer running (a crash
 * leaves them behind; a node's own work directory it wipes itself).
 */
export async function clearStaleStaging (stagingRoot: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(stagingRoot)
  } catch {
    return
  }
  for (const name of names) {
    const tagged = /^run-(.*)$/.exec(name)?.[1]
    if (tagged === undefined || !leftByDeadNode(tagged)) continue
    await removeTree(join(stagingRoot, name)).catch(() => {})
  }
}

/** Where a root node stages what its build user cannot reach (the executor's `stagingRoot` option overrides it). */
export const DEFAULT_STAGING_ROOT = '/var/tmp/buildhaus-sandbox'

/** Make (or check) the staging root: this user's, 0711, and reachable by the build user. */
export async function ensureStagingRoot (path: string, user: BuildUser): Promise<string> {
  await mkdir(path, { recursive: true, mode: 0o711 })
  const stats = await lstat(path)
  const uid = process.getuid?.() ?? 0
  // Somebody else's directory (or a link planted in a shared /var/tmp) must not hold our workspaces.
  if (!stats.isDirectory() || stats.uid !== uid || (stats.mode & 0o022) !== 0) {
    throw new EnvironmentError(`the sandbox staging directory ${path} is not a directory owned by this user and closed to others; remove it, or choose another with the executor's stagingRoot option`)
  }
  if ((stats.mode & 0o777) !== 0o711) await chmod(path, 0o711)
  if (!await canTraverse(path, user)) {
    throw new EnvironmentError(`the build user (uid ${user.uid}) cannot reach the sandbox staging directory ${path}; make its parent directories traversable (chmod o+x) or choose another stagingRoot`)
  }
  return path
}

/**
 * A freshly unpacked tree of at most this many entries is handed over with
 * direct system calls: a few microseconds each, where a thread-pool round
 * trip waits for the event loop (the same bound as the unpack's direct calls,
 * archive/unpack.ts DIRECT_ENTRIES).
 */
export const DIRECT_HANDOVER_ENTRIES = 64

/** Give every entry of a tree to `user`, through the thread pool or (`direct`, a small tree) with direct system calls. */
async function chownTree (root: string, user: BuildUser, direct: boolean): Promise<void> {
  const give = direct
    ? async (path: string) => { lchownSync(path, user.uid, user.gid) }
    : async (path: string) => { await lchown(path, user.uid, user.gid) }
  const list = direct
    ? async (dir: string) => readdirSync(dir, { withFileTypes: true })
    : async (dir: string) => await readdir(dir, { withFileTypes: true })
  const pending = [root]
  await give(root)
  while (pending.length > 0) {
    const dir = pending.pop()!
    for (const entry of await list(dir)) {
      const path = join(dir, entry.name)
      await give(path)
      if (entry.isDirectory()) pending.push(path)
    }
  }
}

/**
 * Delete a tree of any depth (a build can nest directories past PATH_MAX,
 * where Node's fs.rm fails), also when a build left directories without
 * permissions (mode 000): a node sharing its uid with builds restores them
 * first. Throws WorkspaceRemovalError, with no host path, when something stays.
 */
export async function removeTree (root: string): Promise<void> {
  await removeTreeAtAnyDepth(root)
}

/**
 * Remove every run directory (`run-*`) under a node's work root: what runs
 * left when the node was killed or crashed, or could not remove at the time.
 * A node calls this at start, before it runs anything, so nothing of a
 * workspace survives a restart.
 */
export async function clearWorkspaces (workRoot: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(workRoot)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  for (const name of names) {
    if (name.startsWith('run-')) await removeTree(join(workRoot, name))
  }
}

/** passwd and group for the sandbox: the build user, root, nobody; nothing of the host's. */
export async function writeSandboxEtc (etcDir: string, insideUid: number): Promise<void> {
  const user = insideUid === 0 ? 'root' : 'build'
  const passwd = [
    'root:x:0:0:root:/tmp:/bin/sh',
    ...(insideUid === 0 ? [] : [`${user}:x:${insideUid}:${insideUid}:buildhaus build:/tmp:/bin/sh`]),
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin'
  ]
  const group = [
    'root:x:0:',
    ...(insideUid === 0 ? [] : [`${user}:x:${insideUid}:`]),
    'nogroup:x:65534:'
  ]
  await Promise.all([
    writeFile(join(etcDir, 'passwd'), passwd.join('\n') + '\n', { mode: 0o644 }),
    writeFile(join(etcDir, 'group'), group.join('\n') + '\n', { mode: 0o644 })
  ])
}
