import { constants as fsConstants } from 'node:fs'
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import tar from 'tar-stream'
import { entryComponents } from '../archive/paths.js'
import { describeError } from '../util/errors.js'
import { ImageArchiveError } from './errors.js'

/**
 * Applying one layer of a container image (a tar, gzip'd or not) onto a
 * root directory, the way overlay file systems stack them: entries replace
 * what lower layers left, `.wh.NAME` removes NAME, `.wh..wh..opq` hides a
 * directory's lower contents. Layers are strangers' bytes: nothing is
 * written through a link, names with `..` or absolute names are refused,
 * device nodes are skipped (a sandbox brings its own /dev), and setuid and
 * setgid bits are dropped (the root lies on the volunteer's disk).
 */

type TarEntry = AsyncIterable<Buffer> & { header: tar.Header }

export interface LayerBudget {
  /** Bytes of file content and entries still allowed over all layers. */
  bytes: number
  entries: number
}

const WRITE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW
const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'
/** Mode bits kept: permissions and the sticky bit, never setuid or setgid. */
const MODE_MASK = 0o1777

export async function applyLayer (layer: Readable, root: string, budget: LayerBudget, what: string): Promise<void> {
  const applier = new LayerApplier(root, budget, what)
  const extract = tar.extract()
  const first = await peek(layer)
  const gzip = first.bytes[0] === 0x1f && first.bytes[1] === 0x8b
  if (first.bytes[0] === 0x28 && first.bytes[1] === 0xb5 && first.bytes[2] === 0x2f && first.bytes[3] === 0xfd) {
    throw new ImageArchiveError(`${what} is zstd-compressed, which buildhaus cannot read yet; save the image with gzip or uncompressed layers`)
  }
  let feedError: unknown
  const feeding = pipeline([first.stream, ...(gzip ? [createGunzip()] : []), extract as unknown as NodeJS.WritableStream]).catch((err: unknown) => { feedError = err })
  try {
    for await (const entry of extract as AsyncIterable<TarEntry>) await applier.entry(entry)
    await feeding
    if (feedError !== undefined) throw feedError
  } catch (err) {
    extract.destroy()
    await feeding
    if (err instanceof ImageArchiveError) throw err
    throw new ImageArchiveError(`${what} is not a readable tar layer: ${describeError(feedError ?? err)}`)
  }
}

/** The first bytes of a stream, and a stream that still yields them. */
async function peek (stream: Readable): Promise<{ bytes: Buffer, stream: Readable }> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>
  const chunks: Buffer[] = []
  let length = 0
  let done = false
  while (length < 4 && !done) {
    const next = await iterator.next()
    if (next.done === true) done = true
    else { chunks.push(next.value); length += next.value.length }
  }
  const head = Buffer.concat(chunks)
  async function * rest (): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head
    if (done) return
    while (true) {
      const next = await iterator.next()
      if (next.done === true) return
      yield next.value
    }
  }
  return { bytes: head, stream: Readable.from(rest()) }
}

class LayerApplier {
  /** Paths (joined components) this layer made: an opaque marker hides only what lower layers made. */
  private readonly made = new Set<string>()
  /** Directories above the paths this layer made. */
  private readonly ancestors = new Set<string>()
  private readonly asRoot = process.getuid?.() === 0

  constructor (private readonly root: string, private readonly budget: LayerBudget, private readonly what: string) {}

  async entry (entry: TarEntry): Promise<void> {
    const { header } = entry
    if (--this.budget.entries < 0) throw new ImageArchiveError(`the image has too many files (stopped in ${this.what} at ${header.name})`)
    if (header.name.includes('\0') || (header.linkname ?? '').includes('\0')) throw new ImageArchiveError(`${this.what} has a name with a NUL byte`)
    const parts = entryComponents(header.name)
    if (parts === 'absolute-path' || parts === 'parent-path') throw new ImageArchiveError(`${this.what} has the unsafe name ${JSON.stringify(header.name)}`)
    if (parts === 'empty') return await drain(entry)
    const base = parts.at(-1)!
    const dirParts = parts.slice(0, -1)
    if (base === OPAQUE) {
      await this.hideLower(dirParts)
      return await drain(entry)
    }
    if (base.startsWith(WHITEOUT)) {
      await this.parents(dirParts, header.name)
      await rm(join(this.root, ...dirParts, base.slice(WHITEOUT.length)), { recursive: true, force: true })
      return await drain(entry)
    }
    await this.parents(dirParts, header.name)
    const path = join(this.root, ...parts)
    this.made.add(parts.join('/'))
    for (let i = 1; i < parts.length; i++) this.ancestors.add(parts.slice(0, i).join('/'))
    switch (header.type) {
      case 'directory': {
        const kind = await kindOf(path)
        if (kind !== 'directory') {
          if (kind !== undefined) await unlink(path)
          await mkdir(path)
        }
        await this.own(path, header, true)
        return await drain(entry)
      }
      case 'file':
      case 'contiguous-file':
        await this.clear(path)
        return await this.file(path, entry)
      case 'symlink':
        await this.clear(path)
        await symlink(header.linkname ?? '', path)
        await this.own(path, header, false)
        return await drain(entry)
      case 'link':
        await this.clear(path)
        await this.hardlink(path, header.linkname ?? '', header.name)
        return await drain(entry)
      default:
        // Devices, fifos: a sandbox mounts its own /dev, and a build needs no fifo from an image.
        return await drain(entry)
    }
  }

  private async file (path: string, entry: TarEntry): Promise<void> {
    const handle = await open(path, WRITE_FLAGS, 0o600)
    try {
      for await (const chunk of entry) {
        this.budget.bytes -= chunk.length
        if (this.budget.bytes < 0) throw new ImageArchiveError('the image unpacks to more bytes than an environment may hold')
        await handle.write(chunk)
      }
    } finally {
      await handle.close()
    }
    await this.own(path, entry.header, true)
  }

  private async hardlink (path: string, target: string, name: string): Promise<void> {
    const parts = entryComponents(target)
    if (typeof parts === 'string') throw new ImageArchiveError(`${this.what}: ${name} is a hard link to the unsafe name ${JSON.stringify(target)}`)
    await this.parents(parts.slice(0, -1), name)
    const source = join(this.root, ...parts)
    if (await kindOf(source) !== 'file') throw new ImageArchiveError(`${this.what}: ${name} is a hard link to ${target}, which is not a file of the image`)
    await link(source, path)
  }

  /** Ownership, permissions (no setuid/setgid) and modification time as the layer says. */
  private async own (path: string, header: tar.Header, followable: boolean): Promise<void> {
    if (this.asRoot) await lchown(path, header.uid ?? 0, header.gid ?? 0)
    if (followable) await chmod(path, (header.mode ?? 0o644) & MODE_MASK)
    const mtime = header.mtime
    if (mtime !== undefined && mtime.getTime() >= 0) await lutimes(path, mtime, mtime).catch(() => {})
  }

  /** Make the directories above an entry; every one must be a real directory, never a link. */
  private async parents (parts: string[], name: string): Promise<void> {
    let here = this.root
    for (const part of parts) {
      here = join(here, part)
      const kind = await kindOf(here)
      if (kind === 'directory') continue
      if (kind === 'symlink') throw new ImageArchiveError(`${this.what}: ${name} would be written through the link ${part}; buildhaus does not follow an image's links`)
      if (kind !== undefined) await unlink(here)
      await mkdir(here, { mode: 0o755 })
    }
  }

  /** Remove whatever is at `path` (a lower layer's file, link or directory) to make way. */
  private async clear (path: string): Promise<void> {
    if (await kindOf(path) !== undefined) await rm(path, { recursive: true, force: true })
  }

  /** `.wh..wh..opq`: the directory's contents from lower layers disappear; this layer's stay. */
  private async hideLower (dirParts: string[]): Promise<void> {
    await this.parents(dirParts, `${dirParts.join('/')}/${OPAQUE}`)
    const dir = join(this.root, ...dirParts)
    for (const name of await readdir(dir)) {
      const key = [...dirParts, name].join('/')
      const path = join(dir, name)
      const isDir = await kindOf(path) === 'directory'
      if (isDir && (this.made.has(key) || this.ancestors.has(key))) await this.hideLower([...dirParts, name])
      else if (!this.made.has(key)) await rm(path, { recursive: true, force: true })
    }
  }
}

async function kindOf (path: string): Promise<'directory' | 'file' | 'symlink' | 'other' | undefined> {
  try {
    const stats = await lstat(path)
    return stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : stats.isSymbolicLink() ? 'symlink' : 'other'
  } catch {
    return undefined
  }
}

async function drain (entry: TarEntry): Promise<void> {
  for await (const _chunk of entry) {
    // skipped content
  }
}
