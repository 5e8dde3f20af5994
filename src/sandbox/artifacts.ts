import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { chmod, mkdir, open, readdir, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import picomatch from 'picomatch'
import { compareBytes } from '../archive/index.js'
import type { CollectedArtifact } from './types.js'

export interface CollectOptions {
  /** Most files to collect. */
  maxFiles: number
  /** Node shares its uid with the build: restore permissions a build took away from its own files. */
  reopenUnreadable: boolean
}

export interface Collection {
  artifacts: CollectedArtifact[]
  /** Lines for the log: what matched but was not collected, and why. */
  notes: string[]
}

const COPY_CHUNK = 1024 * 1024

/**
 * Copy the regular files under `root` matching `globs` into `destDir`,
 * hashing them on the way, sorted by path. The walk never follows a symlink
 * and never leaves `root`; a symlink that matches is noted, not collected.
 * Run only once nothing in the sandbox is alive to change the tree.
 */
export async function collectArtifacts (root: string, globs: string[], destDir: string, options: CollectOptions): Promise<Collection> {
  const collection: Collection = { artifacts: [], notes: [] }
  if (globs.length === 0) return collection
  const matches = picomatch(globs, { dot: true })
  const found: string[] = []
  const pending: string[][] = [[]]
  while (pending.length > 0) {
    const parts = pending.pop()!
    for (const entry of await listDir(join(root, ...parts), options.reopenUnreadable)) {
      const relative = [...parts, entry.name]
      const path = relative.join('/')
      if (entry.isDirectory()) pending.push(relative)
      else if (!matches(path)) continue
      else if (entry.isFile()) found.push(path)
      else collection.notes.push(`${path} matches an artifact glob but is ${entry.isSymbolicLink() ? 'a symlink' : 'not a regular file'}: not collected`)
    }
  }
  found.sort(compareBytes)
  if (found.length > options.maxFiles) {
    collection.notes.push(`${found.length} files match the artifact globs; only the first ${options.maxFiles} are collected`)
    found.length = options.maxFiles
  }
  for (const path of found) {
    const copy = join(destDir, ...path.split('/'))
    await mkdir(dirname(copy), { recursive: true })
    const { sha256, size } = await copyHashing(join(root, ...path.split('/')), copy, options.reopenUnreadable)
    collection.artifacts.push({ path, sha256, size, file: copy })
  }
  return collection
}

async function listDir (dir: string, reopen: boolean): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES' || !reopen) throw err
    await chmod(dir, 0o700)
    return await readdir(dir, { withFileTypes: true })
  }
}

async function openSource (path: string, reopen: boolean): Promise<FileHandle> {
  const flags = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK
  try {
    return await open(path, flags)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES' || !reopen) throw err
    // The walk saw a regular file here, and nothing in the sandbox still runs to swap it.
    await chmod(path, 0o600)
    return await open(path, flags)
  }
}

async function copyHashing (source: string, destination: string, reopen: boolean): Promise<{ sha256: string, size: number }> {
  const input = await openSource(source, reopen)
  try {
    if (!(await input.stat()).isFile()) throw new Error(`${source} is no longer a regular file`)
    const output = await open(destination, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644)
    try {
      const hash = createHash('sha256')
      const buffer = Buffer.alloc(COPY_CHUNK)
      let size = 0
      while (true) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, null)
        if (bytesRead === 0) break
        const chunk = buffer.subarray(0, bytesRead)
        hash.update(chunk)
        await output.write(chunk)
        size += bytesRead
      }
      return { sha256: hash.digest('hex'), size }
    } finally {
      await output.close()
    }
  } finally {
    await input.close()
  }
}
