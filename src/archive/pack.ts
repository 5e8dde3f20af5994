import { createHash } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { lstat, open, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import picomatch from 'picomatch'
import tar from 'tar-stream'
import { MAX_SOURCE_BYTES } from './constants.js'
import { SourceTooLargeError, UnsafeSourceError } from './errors.js'
import { compareBytes, linkLeavesRoot } from './paths.js'

export interface PackOptions {
  /** Bound on the total size of regular files, in bytes. */
  maxBytes?: number
  /** Bound on the number of entries (files, directories and symlinks). */
  maxFiles?: number
  /** picomatch globs of paths (relative, posix) to leave out; a matching directory is left out whole. */
  exclude?: string[]
}

export interface PackedSource {
  /** A gzip'd tar. */
  bytes: Buffer
  /** sha256 of `bytes`, lower-case hex. */
  sha256: string
  /** Byte length of `bytes`. */
  size: number
  /** Entries in the tar (files, directories and symlinks). */
  files: number
}

export const DEFAULT_PACK_LIMITS = { maxBytes: MAX_SOURCE_BYTES, maxFiles: 100_000 } as const

/**
 * Names never packed, wherever they appear. `.git` holds version-control
 * state that differs between two clones of the same commit (packs, reflogs,
 * the index), so including it would give one source tree many hashes; it is
 * also often larger than the tree itself. `node_modules` is kept: the sandbox
 * has no network, so vendored dependencies are the only way to build with
 * them (pass `exclude` to leave them out).
 */
export const ALWAYS_SKIPPED = ['.git'] as const

interface SourceEntry {
  path: string
  absolute: string
  kind: 'file' | 'directory' | 'symlink'
  executable: boolean
  size: number
  target?: string
}

/**
 * Pack `dir` into a deterministic gzip'd tar: entries sorted by path (UTF-8
 * byte order), mtime 0, uid/gid 0, empty user and group names, modes 0644 for
 * files, 0755 for executables and directories, a fixed gzip header. The same
 * tree gives the same tar on any machine, and the same gzip bytes with the
 * same zlib (Node bundles its own, so: with the same Node release).
 */
export async function packDirectory (dir: string, options: PackOptions = {}): Promise<PackedSource> {
  const maxBytes = options.maxBytes ?? DEFAULT_PACK_LIMITS.maxBytes
  const maxFiles = options.maxFiles ?? DEFAULT_PACK_LIMITS.maxFiles
  const excluded = options.exclude !== undefined && options.exclude.length > 0
    ? picomatch(options.exclude, { dot: true })
    : () => false

  const entries: SourceEntry[] = []
  await walk(dir, [], entries, excluded)
  entries.sort((a, b) => compareBytes(a.path, b.path))

  const totalBytes = entries.reduce((sum, entry) => sum + entry.size, 0)
  if (entries.length > maxFiles) throw new SourceTooLargeError(entries.length, maxFiles, 'files')
  if (totalBytes > maxBytes) throw new SourceTooLargeError(totalBytes, maxBytes, 'bytes')

  for (const entry of entries) {
    if (entry.kind !== 'symlink') continue
    const linkDir = entry.path.split('/').slice(0, -1)
    if (await linkLeavesRoot(dir, linkDir, entry.target!)) {
      throw new UnsafeSourceError(entry.path, `${entry.path} is a symlink to ${entry.target}, which leaves the source tree; replace it with the file itself or a relative link inside the tree`)
    }
  }

  const tarBytes = await writeTar(entries, maxBytes)
  const bytes = gzipSync(tarBytes, { level: 9 })
  // Fixed header: no mtime, and the same OS byte (3, Unix) whatever the host.
  bytes.writeUInt32LE(0, 4)
  bytes[9] = 3
  return {
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    files: entries.length
  }
}

async function walk (root: string, parts: string[], out: SourceEntry[], excluded: (path: string) => boolean): Promise<void> {
  const here = join(root, ...parts)
  const names = await readdir(here)
  for (const name of names) {
    if ((ALWAYS_SKIPPED as readonly string[]).includes(name)) continue
    const path = [...parts, name].join('/')
    if (excluded(path)) continue
    const absolute = join(here, name)
    const stats = await lstat(absolute)
    if (stats.isDirectory()) {
      out.push({ path, absolute, kind: 'directory', executable: true, size: 0 })
      await walk(root, [...parts, name], out, excluded)
    } else if (stats.isFile()) {
      out.push({ path, absolute, kind: 'file', executable: (stats.mode & 0o111) !== 0, size: stats.size })
    } else if (stats.isSymbolicLink()) {
      out.push({ path, absolute, kind: 'symlink', executable: false, size: 0, target: await readlink(absolute) })
    } else {
      const what = stats.isFIFO() ? 'a fifo' : stats.isSocket() ? 'a socket' : 'a device node'
      throw new UnsafeSourceError(path, `${path} is ${what}, which cannot be part of a source archive; remove it or exclude it`)
    }
  }
}

async function writeTar (entries: SourceEntry[], maxBytes: number): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk)
  })()
  const epoch = new Date(0)
  let total = 0
  try {
    for (const entry of entries) {
      const common = { name: entry.path, mtime: epoch, uid: 0, gid: 0, uname: '', gname: '' }
      if (entry.kind === 'directory') {
        await addEntry(pack, { ...common, name: `${entry.path}/`, type: 'directory', mode: 0o755 })
      } else if (entry.kind === 'symlink') {
        await addEntry(pack, { ...common, type: 'symlink', mode: 0o777, linkname: entry.target! })
      } else {
        const content = await readRegularFile(entry)
        total += content.length
        if (total > maxBytes) throw new SourceTooLargeError(total, maxBytes, 'bytes')
        await addEntry(pack, { ...common, type: 'file', mode: entry.executable ? 0o755 : 0o644, size: content.length }, content)
      }
    }
  } catch (err) {
    pack.destroy(err as Error)
    await collected.catch(() => {})
    throw err
  }
  pack.finalize()
  await collected
  return Buffer.concat(chunks)
}

async function addEntry (pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], content?: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null): void => { if (err != null) reject(err); else resolve() }
    if (content !== undefined) pack.entry(header, content, done)
    else pack.entry(header, done)
  })
}

/** Read a file without following a symlink swapped in since the walk. */
async function readRegularFile (entry: SourceEntry): Promise<Buffer> {
  let handle
  try {
    handle = await open(entry.absolute, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeSourceError(entry.path, `${entry.path} became a symlink while the source was being packed; pack again once the tree is still`)
    throw err
  }
  try {
    return await handle.readFile()
  } finally {
    await handle.close()
  }
}
