import { mkdirSync, realpathSync } from 'node:fs'
import { mkdir, realpath } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip, gunzipSync } from 'node:zlib'
import tar from 'tar-stream'
import { describeError } from '../util/errors.js'
import { UnsafeArchiveError } from './errors.js'
import { entryComponents, linkLeavesRoot } from './paths.js'
import { directFs, threadPoolFs, type PathKind, type UnpackFs } from './unpack-fs.js'

export interface UnpackLimits {
  /** Most entries (of any type) the archive may hold. */
  maxFiles: number
  /** Most bytes of file content the archive may hold. */
  maxBytes: number
}

export interface UnpackOptions {
  /**
   * How many members of a small archive (see DIRECT_MAX_INPUT_BYTES) are
   * written with direct system calls instead of through the thread pool;
   * the rest, and every member of a larger archive, go through the pool.
   * Default DIRECT_ENTRIES; tests set 0 to take the pool for everything.
   */
  directEntries?: number
}

/**
 * A source archive given as a buffer of at most this many bytes, that
 * expands to at most DIRECT_MAX_TAR_BYTES, is unpacked without the thread
 * pool for its first DIRECT_ENTRIES members: each call then blocks the node
 * for microseconds instead of waiting a loop turn (a job's sandbox start
 * spent 3–10 ms unpacking a one-file source on a busy node). The bounds
 * keep the longest such block near a few milliseconds.
 */
export const DIRECT_MAX_INPUT_BYTES = 64 * 1024
export const DIRECT_MAX_TAR_BYTES = 1024 * 1024
export const DIRECT_ENTRIES = 64

export interface UnpackResult {
  /** Entries unpacked (files, directories, links). */
  files: number
  /** Bytes of file content written. */
  bytes: number
}

/** Room for tar headers, padding and long-name records on top of the content bound. */
/** A member as tar-stream hands it over: its header and a stream of its content. */
type TarEntry = AsyncIterable<Buffer> & { header: tar.Header }

const HEADER_ALLOWANCE_PER_ENTRY = 3 * 512
const FIXED_ALLOWANCE = 1024 * 1024

/**
 * Unpack a tar (gzip'd or not) into `dest`, streaming, refusing anything
 * unsafe with an UnsafeArchiveError: absolute names, `..` components, links
 * resolving outside `dest`, device nodes and fifos, too many entries, too many
 * bytes (counted on the entries and on the decompressed stream, so a gzip
 * bomb stops early), and anything that is not a tarball.
 *
 * Nothing is ever written through a link: every parent of an entry must be a
 * real directory made by this archive, files are opened O_EXCL|O_NOFOLLOW, and
 * symlinks are checked against the finished tree (a later link can change
 * where an earlier one leads). On error, `dest` holds a partial tree the
 * caller should delete; links found leaving it have already been removed.
 */
export async function unpackTarball (input: Buffer | Readable, dest: string, limits: UnpackLimits, options: UnpackOptions = {}): Promise<UnpackResult> {
  const smallTar = smallTarOf(input)
  let root: string
  if (smallTar !== undefined) {
    mkdirSync(dest, { recursive: true })
    root = realpathSync(dest)
  } else {
    await mkdir(dest, { recursive: true })
    root = await realpath(dest)
  }
  const source = smallTar !== undefined ? [Readable.from([smallTar], { objectMode: false })] : await withGunzipIfNeeded(input)
  const budget = limits.maxBytes + limits.maxFiles * HEADER_ALLOWANCE_PER_ENTRY + FIXED_ALLOWANCE
  const extract = tar.extract()
  let feedError: unknown
  const feeding = pipeline([...source, new ByteBound(budget, limits.maxBytes), extract as unknown as NodeJS.WritableStream])
    .catch((err: unknown) => { feedError = err })

  const unpacker = new Unpacker(root, limits, smallTar !== undefined ? (options.directEntries ?? DIRECT_ENTRIES) : 0)
  let entryError: unknown
  try {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      try {
        await unpacker.entry(entry)
      } catch (err) {
        entryError = err
        throw err
      }
    }
    await feeding
    if (feedError !== undefined) throw feedError
    await unpacker.checkLinks()
  } catch (err) {
    extract.destroy()
    await feeding
    // An entry we refused or failed to write is the cause; the pipeline's "premature close"
    // is only its reaction to destroy(). An error from the extractor itself means the
    // pipeline failed upstream (gunzip, the byte bound): report that cause. So does an entry
    // whose content stream was torn down: if the failure came while we were busy with the
    // file system, its stream had already errored and reading it says only "destroyed".
    const ours = err instanceof UnsafeArchiveError || (entryError !== undefined && err === entryError && !isStreamTeardown(err))
    throw asArchiveError(ours || feedError === undefined ? err : feedError)
  }
  return { files: unpacker.files, bytes: unpacker.bytes }
}

class Unpacker {
  files = 0
  bytes = 0
  private readonly links: Array<{ name: string, parts: string[], target: string }> = []

  constructor (private readonly root: string, private readonly limits: UnpackLimits, private readonly directEntries: number) {}

  /** Direct system calls for the first members of a small archive, the thread pool after them. */
  private get fs (): UnpackFs {
    return this.files <= this.directEntries ? directFs : threadPoolFs
  }

  async entry (entry: TarEntry): Promise<void> {
    await this.unpackEntry(entry).catch((err: unknown) => this.nameTooLong(err, entry.header.name, 'a name'))
  }

  /** A name no file system here can hold is the archive's fault, not the host's: refuse it. Other errors pass. */
  private nameTooLong (err: unknown, name: string, what: string): never {
    if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') {
      const shown = name.length > 100 ? `${name.slice(0, 100)}…` : name
      throw new UnsafeArchiveError('bad-name', `archive entry ${shown} has ${what} with a component longer than the file system allows; shorten it in the source`, name, { cause: err })
    }
    throw err
  }

  private async unpackEntry (entry: TarEntry): Promise<void> {
    const header = entry.header
    const name = header.name
    // A pax header can carry any bytes; no file system takes a NUL in a name.
    if (name.includes('\0') || (header.linkname ?? '').includes('\0')) {
      throw new UnsafeArchiveError('bad-name', `archive entry ${JSON.stringify(name)} has a NUL byte in its name or link target`, name)
    }
    if (++this.files > this.limits.maxFiles) {
      throw new UnsafeArchiveError('too-many-files', `the archive holds more than ${this.limits.maxFiles} entries (stopped at ${name})`, name)
    }
    const parts = entryComponents(name)
    if (parts === 'absolute-path') throw new UnsafeArchiveError('absolute-path', `archive entry ${name} has an absolute path`, name)
    if (parts === 'parent-path') throw new UnsafeArchiveError('parent-path', `archive entry ${name} has a '..' component`, name)
    if (parts === 'empty') {
      // The root itself ("./"): nothing to create.
      if (header.type === 'directory') return await drain(entry)
      throw new UnsafeArchiveError('not-a-tarball', `archive entry "${name}" has no name`, name)
    }

    switch (header.type) {
      case 'directory':
        await this.directory(name, parts)
        return await drain(entry)
      case 'file':
      case 'contiguous-file':
        return await this.file(name, parts, entry)
      case 'symlink':
        await this.symlink(name, parts, header.linkname ?? '')
        return await drain(entry)
      case 'link':
        await this.hardlink(name, parts, header.linkname ?? '')
        return await drain(entry)
      default:
        throw new UnsafeArchiveError('special-file', `archive entry ${name} is a ${header.type ?? 'non-regular file'}, which is not allowed in a source archive`, name)
    }
  }

  /** After the last entry: every symlink must still resolve inside the tree. */
  async checkLinks (): Promise<void> {
    for (const { name, parts, target } of this.links) {
      const path = join(this.root, ...parts)
      if (!await this.isSymlink(path)) continue
      if (await linkLeavesRoot(this.root, parts.slice(0, -1), target).catch((err: unknown) => this.nameTooLong(err, name, 'its link target'))) {
        await this.fs.unlink(path)
        throw new UnsafeArchiveError('link-outside', `archive entry ${name} is a symlink to ${target}, which leads outside the archive`, name)
      }
    }
  }

  private async directory (name: string, parts: string[]): Promise<void> {
    await this.parents(name, parts)
    const path = join(this.root, ...parts)
    const existing = await this.kind(path)
    if (existing === 'directory') return
    if (existing !== undefined) await this.fs.unlink(path)
    await this.fs.mkdir(path, 0o755)
  }

  private async file (name: string, parts: string[], entry: TarEntry): Promise<void> {
    const size = entry.header.size ?? 0
    if (size > this.limits.maxBytes - this.bytes) {
      throw new UnsafeArchiveError('too-large', `archive entry ${name} (${size} bytes) takes the archive over its limit of ${this.limits.maxBytes} bytes`, name)
    }
    const path = await this.replaceable(name, parts)
    const mode = ((entry.header.mode ?? 0) & 0o111) !== 0 ? 0o755 : 0o644
    const sink = await this.fs.create(path, mode)
    try {
      for await (const chunk of entry) {
        this.bytes += chunk.length
        if (this.bytes > this.limits.maxBytes) {
          throw new UnsafeArchiveError('too-large', `archive entry ${name} takes the archive over its limit of ${this.limits.maxBytes} bytes`, name)
        }
        await sink.write(chunk)
      }
      const mtime = entry.header.mtime
      await sink.finish(mode, mtime !== undefined && mtime.getTime() >= 0 ? mtime : undefined)
    } finally {
      await sink.close()
    }
  }

  private async symlink (name: string, parts: string[], target: string): Promise<void> {
    if (target === '' || target.startsWith('/') || target.includes('\0')) {
      throw new UnsafeArchiveError('link-outside', `archive entry ${name} is a symlink to "${target}", which leads outside the archive`, name)
    }
    // Early, lexical refusal of the obvious cases; checkLinks() does the real resolution.
    let depth = parts.length - 1
    for (const part of target.split('/')) {
      if (part === '..') depth--
      else if (part !== '' && part !== '.') depth++
      if (depth < 0) throw new UnsafeArchiveError('link-outside', `archive entry ${name} is a symlink to ${target}, which leads outside the archive`, name)
    }
    const path = await this.replaceable(name, parts)
    await this.fs.symlink(target, path)
    this.links.push({ name, parts, target })
  }

  private async hardlink (name: string, parts: string[], target: string): Promise<void> {
    const targetParts = entryComponents(target)
    if (typeof targetParts === 'string') {
      throw new UnsafeArchiveError('link-outside', `archive entry ${name} is a hard link to "${target}", which is not a file inside the archive`, name)
    }
    // The target must be a regular file reached through real directories only.
    let here = this.root
    for (const [i, part] of targetParts.entries()) {
      here = join(here, part)
      const kind = await this.kind(here)
      const wanted = i === targetParts.length - 1 ? 'file' : 'directory'
      if (kind !== wanted) {
        throw new UnsafeArchiveError('link-outside', `archive entry ${name} is a hard link to ${target}, which is not a file already unpacked from the archive`, name)
      }
    }
    // A hard link to itself names the file already there: nothing to do (removing it first would lose it).
    if (here === join(this.root, ...parts)) return
    const path = await this.replaceable(name, parts)
    await this.fs.link(here, path)
  }

  /** Make the parents of `parts` (real directories only) and clear the way for a new non-directory entry. */
  private async replaceable (name: string, parts: string[]): Promise<string> {
    await this.parents(name, parts)
    const path = join(this.root, ...parts)
    const existing = await this.kind(path)
    if (existing === 'directory') {
      throw new UnsafeArchiveError('not-a-tarball', `archive entry ${name} would replace a directory of the same name`, name)
    }
    // A later member replaces an earlier one, as tar does. unlink() never follows a link.
    if (existing !== undefined) await this.fs.unlink(path)
    return path
  }

  private async parents (name: string, parts: string[]): Promise<void> {
    let here = this.root
    for (const part of parts.slice(0, -1)) {
      here = join(here, part)
      const kind = await this.kind(here)
      if (kind === 'directory') continue
      if (kind === 'symlink') {
        throw new UnsafeArchiveError('link-outside', `archive entry ${name} would be written through the symlink ${part}`, name)
      }
      if (kind !== undefined) await this.fs.unlink(here)
      await this.fs.mkdir(here, 0o755)
    }
  }

  private async kind (path: string): Promise<PathKind> {
    return await this.fs.kind(path)
  }

  private async isSymlink (path: string): Promise<boolean> {
    return await this.kind(path) === 'symlink'
  }
}

async function drain (entry: TarEntry): Promise<void> {
  for await (const _ of entry) { /* directories and links carry no data */ }
}

/**
 * A small buffer's tar bytes (gunzipped in one call when it is a gzip), or
 * undefined when the input takes the streaming path: a stream, a larger
 * buffer, one that expands past DIRECT_MAX_TAR_BYTES, or one gunzip refuses
 * (the streaming path then says what is wrong, as for any input).
 */
function smallTarOf (input: Buffer | Readable): Buffer | undefined {
  if (!Buffer.isBuffer(input) || input.length === 0 || input.length > DIRECT_MAX_INPUT_BYTES) return undefined
  if (input[0] !== 0x1f || input[1] !== 0x8b) return input
  try {
    return gunzipSync(input, { maxOutputLength: DIRECT_MAX_TAR_BYTES })
  } catch {
    return undefined
  }
}

/** The input as a list of pipeline stages, with a gunzip stage when it starts with the gzip magic. */
async function withGunzipIfNeeded (input: Buffer | Readable): Promise<Array<Readable | Transform>> {
  const iterable: AsyncIterable<unknown> = Buffer.isBuffer(input) ? (async function * () { yield input })() : input
  const iterator = iterable[Symbol.asyncIterator]()
  let first: Buffer = Buffer.alloc(0)
  // Two bytes decide; a stream may hand them over in separate chunks.
  const head: Buffer[] = []
  while (first.length < 2) {
    const next = await iterator.next()
    if (next.done === true) break
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array)
    head.push(chunk)
    first = Buffer.concat(head)
  }
  if (first.length === 0) throw new UnsafeArchiveError('not-a-tarball', 'the archive is empty')
  async function * replay (): AsyncGenerator<Buffer> {
    yield first
    while (true) {
      const next = await iterator.next()
      if (next.done === true) return
      yield Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array)
    }
  }
  const stream = Readable.from(replay(), { objectMode: false })
  const gzipped = first[0] === 0x1f && first[1] === 0x8b
  return gzipped ? [stream, createGunzip()] : [stream]
}

/** Stops the pipeline once the (decompressed) archive passes `budget` bytes. */
class ByteBound extends Transform {
  private seen = 0
  constructor (private readonly budget: number, private readonly contentLimit: number) { super() }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.budget) {
      callback(new UnsafeArchiveError('too-large', `the archive expands to more than ${this.budget} bytes, far beyond its content limit of ${this.contentLimit} bytes`))
      return
    }
    callback(null, chunk)
  }
}

/** What a stream reports when something else tore it down: never a cause in itself (streamx and Node spellings). */
const TEARDOWN_CODES = new Set(['STREAM_DESTROYED', 'PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_PREMATURE_CLOSE'])

function isStreamTeardown (err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' && TEARDOWN_CODES.has(code)
}

function asArchiveError (err: unknown): Error {
  if (err instanceof UnsafeArchiveError) return err
  // Errors from the host's file system (disk full, permissions) are not the archive's fault.
  if (typeof (err as NodeJS.ErrnoException | undefined)?.syscall === 'string') return err as Error
  return new UnsafeArchiveError('not-a-tarball', `the input is not a valid tarball: ${describeError(err)}`, undefined, { cause: err })
}
