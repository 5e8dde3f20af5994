import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import type { Dirent } from 'node:fs'
import { chmod, mkdir, open, readdir, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import picomatch from 'picomatch'
import { compareBytes } from '../archive/index.js'
import { SandboxRunError } from './errors.js'
import { recordSplitter, reopenTree, runTreeTool, treeTools } from './tree-walk.js'
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

/** Paths longer than this (in bytes, relative to the workspace) cannot be opened by path (PATH_MAX is 4096): they are counted, not listed. */
const MAX_LISTED_PATH_BYTES = 4096
/** Most bytes of workspace listing read before collection gives up: every read is bounded. */
const MAX_LISTING_BYTES = 64 * 1024 * 1024
/** PATH_MAX on Linux, with its terminating NUL. */
const PATH_MAX = 4096
/** A note names at most this much of a path. */
const MAX_NOTED_PATH = 300

/**
 * Copy the regular files under `root` matching `globs` into `destDir`,
 * hashing them on the way, sorted by path. The listing (GNU find, at any
 * depth) never follows a symlink and never leaves `root`'s file system; a
 * symlink that matches is noted, not collected, as is a file whose path is
 * too long to open. Run only once nothing in the sandbox is alive to change
 * the tree. Throws (an fs error, or SandboxRunError for a listing that fails)
 * when collection cannot be done: the caller ends the run with an error.
 */
export async function collectArtifacts (root: string, globs: string[], destDir: string, options: CollectOptions): Promise<Collection> {
  const collection: Collection = { artifacts: [], notes: [] }
  if (globs.length === 0) return collection
  const matches = picomatch(globs, { dot: true })
  let listing = await listInProcess(root) ?? await listFiles(root)
  if (!listing.complete && options.reopenUnreadable) {
    await reopenTree(root)
    listing = await listFiles(root)
  }
  if (!listing.complete) throw new SandboxRunError(`the workspace could not be listed (${listing.problem ?? 'unknown'})`)
  if (listing.tooLong > 0) collection.notes.push(`${listing.tooLong} file${listing.tooLong === 1 ? ' has a path' : 's have paths'} longer than ${MAX_LISTED_PATH_BYTES} bytes: not collected`)
  if (listing.notUtf8 > 0) collection.notes.push(`${listing.notUtf8} file name${listing.notUtf8 === 1 ? ' is' : 's are'} not valid UTF-8: not collected`)
  const found: string[] = []
  for (const { type, path } of listing.entries) {
    if (!matches(path)) continue
    if (type !== 'f') {
      collection.notes.push(`${noted(path)} matches an artifact glob but is ${type === 'l' ? 'a symlink' : 'not a regular file'}: not collected`)
    } else if (Buffer.byteLength(join(root, path)) >= PATH_MAX || Buffer.byteLength(join(destDir, path)) >= PATH_MAX) {
      collection.notes.push(`${noted(path)} matches an artifact glob but its path is too long to collect`)
    } else {
      found.push(path)
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

function noted (path: string): string {
  return path.length > MAX_NOTED_PATH ? `${path.slice(0, MAX_NOTED_PATH)}…` : path
}

interface Listing {
  /** Every entry but directories: find's type letter (f, l, p, s, …) and the path relative to the root. */
  entries: Array<{ type: string, path: string }>
  tooLong: number
  notUtf8: number
  complete: boolean
  problem?: string
}

/** Up to this many entries a workspace is listed in-process (no process to start); past it, find lists it. */
const IN_PROCESS_ENTRIES = 1000

/**
 * The listing in Node, or undefined as soon as it meets what only find
 * handles: more than IN_PROCESS_ENTRIES entries, a directory it cannot read,
 * a path too long for the kernel. Nothing runs in the sandbox any more, so
 * nothing vanishes meanwhile.
 */
async function listInProcess (root: string): Promise<Listing | undefined> {
  const listing: Listing = { entries: [], tooLong: 0, notUtf8: 0, complete: true }
  const pending: string[][] = [[]]
  let seen = 0
  while (pending.length > 0) {
    const parts = pending.pop()!
    let entries: Dirent[]
    try {
      entries = await readdir(join(root, ...parts), { withFileTypes: true })
    } catch {
      return undefined
    }
    for (const entry of entries) {
      if (++seen > IN_PROCESS_ENTRIES) return undefined
      const relative = [...parts, entry.name]
      // A name Node could not decode as UTF-8 comes back altered: let find count it.
      if (entry.name.includes('\uFFFD')) return undefined
      if (entry.isDirectory()) pending.push(relative)
      else listing.entries.push({ type: entry.isFile() ? 'f' : entry.isSymbolicLink() ? 'l' : '?', path: relative.join('/') })
    }
  }
  return listing
}

/** Every non-directory under `root`, at any depth (GNU find, NUL-separated: names may hold newlines). */
async function listFiles (root: string): Promise<Listing> {
  const { find } = await treeTools()
  const listing: Listing = { entries: [], tooLong: 0, notUtf8: 0, complete: true }
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let bytes = 0
  let overflow = false
  const onRecord = recordSplitter(0, MAX_LISTED_PATH_BYTES + 2, (record, truncated) => {
    bytes += record.length
    if (bytes > MAX_LISTING_BYTES) {
      overflow = true
      return false
    }
    if (truncated) {
      listing.tooLong++
      return true
    }
    let text: string
    try {
      text = decoder.decode(record)
    } catch {
      listing.notUtf8++
      return true
    }
    listing.entries.push({ type: text.slice(0, 1), path: text.slice(2) })
    return true
  })
  const run = await runTreeTool(find, ['-P', root, '-xdev', '-mindepth', '1', '!', '-type', 'd', '-printf', '%y %P\\0'], onRecord)
  if (overflow) return { ...listing, complete: false, problem: `its listing is over ${MAX_LISTING_BYTES / 1024 / 1024} MiB` }
  if (!run.ok && !run.stopped) return { ...listing, complete: false, problem: run.problem ?? 'the listing failed' }
  return listing
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
    if (!(await input.stat()).isFile()) throw new SandboxRunError('an artifact stopped being a regular file while it was collected')
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
