import { createHash, randomBytes } from 'node:crypto'
import { closeSync, createReadStream, openSync, readSync } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { UsageError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { BlobHashMismatchError, BlobNotFoundError, BlobTooLargeError } from './errors.js'
import { assertBlobHash, isBlobHash } from './hash.js'

const log = componentLogger('blobs:store')

/** Where blobs are written before they are verified and renamed into place; emptied at open. */
const TMP_DIR = 'tmp'
/** One empty marker file per pinned blob, so pins survive a restart. */
const PIN_DIR = 'pins'
const PREFIX_DIR = /^[0-9a-f]{2}$/
/** Size of the reads a blob is streamed in. */
const READ_CHUNK_BYTES = 64 * 1024
/**
 * A blob of at most this many bytes is read by readBytes() with direct
 * system calls: microseconds of blocking instead of three thread-pool round
 * trips, each waiting for a busy event loop (a job's source, read as its
 * build starts).
 */
const DIRECT_READ_BYTES = 64 * 1024

export interface BlobStoreOptions {
  /** Directory holding the blobs (created if missing). */
  dir: string
  /** Bound on the bytes of unpinned blobs kept: beyond it the least recently used are evicted. */
  maxBytes: number
}

export interface PutOptions {
  /** The hash the bytes must have; anything else is discarded with BlobHashMismatchError. */
  expected?: string
  /** Refuse (BlobTooLargeError) as soon as more than this many bytes arrive. */
  maxBytes?: number
  /** Pin the blob once stored. */
  pin?: boolean
  /**
   * Wait for the bytes to reach the disk (fsync) before the blob counts as
   * stored (default true). False for what may be lost with the machine (a
   * build's log): a crash cannot leave it torn unnoticed, since a blob found on
   * disk at open is checked against its hash before it is first served.
   */
  durable?: boolean
}

export interface PutFileOptions {
  pin?: boolean
  /** Rename the file into the store instead of copying it (it must not be touched afterwards). */
  move?: boolean
}

export interface StoredBlob {
  hash: string
  size: number
}

export interface BlobUsage {
  /** Bytes of all blobs held, pinned ones included. */
  bytes: number
  count: number
  /** How many blobs are pinned. */
  pinned: number
  pinnedBytes: number
  maxBytes: number
}

/** An open read of a blob: its size, known before the first byte, and its bytes. */
export interface OpenedBlob {
  size: number
  stream: Readable
}

interface Entry {
  hash: string
  size: number
  pinned: boolean
  /** Its pin has a marker on disk (or one being written), so that it survives a restart. */
  marked?: boolean
  /** Open reads; a blob with readers is never evicted. */
  readers: number
  /**
   * Whether the file's bytes are known to hash to its name. Blobs written by
   * this process are; blobs found at open are checked once, before they are
   * first served, so a file truncated by a crash or a disk fault is never served.
   */
  verified: boolean
  /** Written by this process without an fsync (PutOptions.durable false): a durable put of the same bytes syncs it. */
  volatile?: boolean
  verifying?: Promise<void>
}

/**
 * Content-addressed blobs on disk, named by the sha256 (hex) of their bytes,
 * at `<dir>/<first two hex digits>/<hash>`.
 *
 * Writes are crash-safe: bytes go to a temp file that is fsync'd, checked
 * against the expected hash and only then renamed into place (and the
 * directory fsync'd), so a blob's path holds either nothing or the whole,
 * verified blob. Unpinned blobs beyond `maxBytes` are evicted least recently
 * used first (put, read and fetch count as use); the order survives restarts
 * through the files' mtimes.
 */
export class BlobStore {
  readonly dir: string
  readonly maxBytes: number
  /** Map order is the LRU order: least recently used first. */
  private readonly entries = new Map<string, Entry>()
  private totalBytes = 0
  /** Per-hash chain of file-system changes (rename in, unlink), so an eviction never deletes a blob being re-added. */
  private readonly locks = new Map<string, Promise<unknown>>()
  /** Pin markers being written or removed, per blob: the last of each chain (see markPin). */
  private readonly pinMarks = new Map<string, Promise<void>>()

  private constructor (dir: string, maxBytes: number) {
    this.dir = dir
    this.maxBytes = maxBytes
  }

  static async open (options: BlobStoreOptions): Promise<BlobStore> {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) {
      throw new UsageError(`the blob store bound must be a positive number of bytes, not ${String(options.maxBytes)}`)
    }
    const store = new BlobStore(options.dir, options.maxBytes)
    await mkdir(options.dir, { recursive: true, mode: 0o700 })
    // Anything in tmp/ is a write that never completed: nothing refers to it.
    await rm(join(options.dir, TMP_DIR), { recursive: true, force: true })
    await mkdir(join(options.dir, TMP_DIR), { recursive: true })
    await mkdir(join(options.dir, PIN_DIR), { recursive: true })
    await store.loadIndex()
    await store.loadPins()
    await store.evict()
    return store
  }

  /** Where the blob's file is (or would be). Reading it directly bypasses verification and eviction protection. */
  path (hash: string): string {
    assertBlobHash(hash)
    return join(this.dir, hash.slice(0, 2), hash)
  }

  async has (hash: string): Promise<boolean> {
    assertBlobHash(hash)
    return this.entries.has(hash)
  }

  async stat (hash: string): Promise<{ size: number, pinned: boolean } | undefined> {
    assertBlobHash(hash)
    const entry = this.entries.get(hash)
    return entry === undefined ? undefined : { size: entry.size, pinned: entry.pinned }
  }

  usage (): BlobUsage {
    let pinned = 0
    let pinnedBytes = 0
    for (const entry of this.entries.values()) {
      if (entry.pinned) {
        pinned++
        pinnedBytes += entry.size
      }
    }
    return { bytes: this.totalBytes, count: this.entries.size, pinned, pinnedBytes, maxBytes: this.maxBytes }
  }

  /** Every blob held, least recently used first. */
  list (): Array<{ hash: string, size: number, pinned: boolean }> {
    return [...this.entries.values()].map((e) => ({ hash: e.hash, size: e.size, pinned: e.pinned }))
  }

  /**
   * Store bytes (a buffer or a stream of chunks, consumed as it arrives: never
   * held in memory whole). Returns the blob's hash and size.
   */
  async put (data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<StoredBlob> {
    const expected = options.expected === undefined ? undefined : assertBlobHash(options.expected)
    const callerLimit = options.maxBytes ?? Number.POSITIVE_INFINITY
    // A pinned blob may exceed the bound (it is kept regardless); an unpinned one larger than the whole store would evict everything and then itself.
    const storeLimit = options.pin === true ? Number.POSITIVE_INFINITY : this.maxBytes
    const tmp = this.tempPath()
    const hasher = createHash('sha256')
    let size = 0
    let committed = false
    const handle = await open(tmp, 'wx', 0o644)
    try {
      try {
        for await (const chunk of data instanceof Uint8Array ? [data] : data) {
          size += chunk.byteLength
          if (size > callerLimit) throw new BlobTooLargeError(`blob is larger than the allowed ${callerLimit} bytes; nothing was stored`)
          if (size > storeLimit) throw new BlobTooLargeError(`blob is larger than the whole blob store (${this.maxBytes} bytes); raise the store's bound or pin the blob`)
          hasher.update(chunk)
          await writeAll(handle, chunk)
        }
        if (options.durable !== false) await handle.sync()
      } finally {
        await handle.close()
      }
      const hash = hasher.digest('hex')
      if (expected !== undefined && hash !== expected) throw new BlobHashMismatchError(expected, hash, size)
      await this.commit(tmp, hash, size, options.pin === true, options.durable !== false)
      committed = true
      return { hash, size }
    } finally {
      if (!committed) await rm(tmp, { force: true })
    }
  }

  /** Store a file's bytes: copied (streamed), or with `move` renamed into the store when it is on the same file system. */
  async putFile (path: string, options: PutFileOptions = {}): Promise<StoredBlob> {
    if (options.move !== true) return await this.put(createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }), { pin: options.pin })
    const tmp = this.tempPath()
    try {
      await rename(path, tmp)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
      // Another file system: copy, then remove the original once the copy is safe.
      const stored = await this.put(createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }), { pin: options.pin })
      await rm(path, { force: true })
      return stored
    }
    try {
      const handle = await open(tmp, 'r')
      let hash: string
      let size: number
      try {
        // The bytes must be durable before a rename makes them a blob.
        await handle.sync()
        ;({ hash, size } = await hashHandle(handle))
      } finally {
        await handle.close()
      }
      if (options.pin !== true && size > this.maxBytes) {
        throw new BlobTooLargeError(`${path} (${size} bytes) is larger than the whole blob store (${this.maxBytes} bytes); raise the store's bound or pin the blob`)
      }
      await this.commit(tmp, hash, size, options.pin === true)
      return { hash, size }
    } catch (err) {
      // Give the caller its file back rather than lose it.
      await rename(tmp, path).catch(() => {})
      throw err
    }
  }

  /**
   * Open a blob for reading, after making sure its bytes are intact. The blob
   * cannot be evicted until the stream closes (end, error or destroy).
   */
  async openRead (hash: string): Promise<OpenedBlob> {
    const entry = this.lookup(hash)
    entry.readers++
    let handle: FileHandle | undefined
    try {
      await this.ensureVerified(entry)
      handle = await open(this.path(hash), 'r')
      const { size } = await handle.stat()
      if (size !== entry.size) {
        await handle.close()
        handle = undefined
        await this.drop(entry, `its file changed size on disk (${entry.size} → ${size} bytes)`)
        throw new BlobNotFoundError(hash, `blob ${hash} was damaged on disk and has been removed; fetch it again`)
      }
    } catch (err) {
      await handle?.close()
      this.release(entry)
      throw err
    }
    this.bump(entry)
    const stream = handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES, autoClose: true })
    stream.once('close', () => { this.release(entry) })
    return { size: entry.size, stream }
  }

  /**
   * A blob's bytes as a stream. Throws BlobNotFoundError at once for a blob the
   * store does not hold; a blob found damaged on disk errors the stream instead.
   */
  read (hash: string): Readable {
    this.lookup(hash)
    const open = async (): Promise<OpenedBlob> => await this.openRead(hash)
    // Readable.from starts the generator only when read, so an unread stream holds nothing open.
    return Readable.from((async function * () {
      const { stream } = await open()
      try {
        yield * stream
      } finally {
        stream.destroy()
      }
    })())
  }

  /**
   * A whole blob in memory; BlobTooLargeError if it is bigger than `maxBytes`.
   * Read with one call for a byte more than its size (a file of another size
   * is damaged, as openRead finds), not as a stream: a job's source is read so
   * between its claim and its build, and each call through the thread pool is
   * a wait on that path (a stream of a small file takes five).
   */
  async readBytes (hash: string, maxBytes: number): Promise<Buffer> {
    const entry = this.lookup(hash)
    if (entry.size > maxBytes) throw new BlobTooLargeError(`blob ${hash} is ${entry.size} bytes, more than the ${maxBytes} bytes asked for; stream it with read() instead`)
    entry.readers++
    let handle: FileHandle | undefined
    try {
      await this.ensureVerified(entry)
      // One byte more than the size: a file that grew on disk is caught.
      const buffer = Buffer.allocUnsafe(entry.size + 1)
      let filled = 0
      if (entry.size <= DIRECT_READ_BYTES) {
        const fd = openSync(this.path(hash), 'r')
        try {
          while (filled < buffer.length) {
            const read = readSync(fd, buffer, filled, buffer.length - filled, filled)
            if (read === 0) break
            filled += read
          }
        } finally {
          closeSync(fd)
        }
      } else {
        handle = await open(this.path(hash), 'r')
        while (filled < buffer.length) {
          const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled)
          if (bytesRead === 0) break
          filled += bytesRead
        }
      }
      if (filled !== entry.size) {
        await this.drop(entry, `its file changed size on disk (${entry.size} → ${filled > entry.size ? 'more' : filled} bytes)`)
        throw new BlobNotFoundError(hash, `blob ${hash} was damaged on disk and has been removed; fetch it again`)
      }
      this.bump(entry)
      return buffer.subarray(0, filled)
    } finally {
      // Not waited for: the bytes are read.
      handle?.close().catch((err: unknown) => { log('closing blob %s failed: %e', hash, err) })
      this.release(entry)
    }
  }

  /**
   * Whether the store holds the blob with intact bytes (checking it once if it
   * was found on disk at open). A damaged blob is removed and reported absent.
   */
  async verify (hash: string): Promise<boolean> {
    assertBlobHash(hash)
    const entry = this.entries.get(hash)
    if (entry === undefined) return false
    try {
      await this.ensureVerified(entry)
      return true
    } catch (err) {
      if (err instanceof BlobNotFoundError) return false
      throw err
    }
  }

  /** Count a use of the blob (e.g. a fetch that found it already here) for the LRU order. */
  touch (hash: string): boolean {
    assertBlobHash(hash)
    const entry = this.entries.get(hash)
    if (entry !== undefined) this.bump(entry)
    return entry !== undefined
  }

  /**
   * Keep the blob whatever the bound (e.g. an artifact kept as a release). It
   * is kept from the call on, in memory; the promise settles once the marker
   * that keeps it across a restart is written. A failed write leaves it kept
   * until the process ends. With `persist: false`, no marker: for a caller
   * that pins again after a restart (the jobs layer, from the log), and
   * spares the disk a file made and removed for every job.
   */
  async pin (hash: string, options: { persist?: boolean } = {}): Promise<void> {
    const entry = this.lookup(hash)
    entry.pinned = true
    if (options.persist === false || (entry.marked === true && !this.pinMarks.has(hash))) return
    entry.marked = true
    await this.markPin(hash, true)
  }

  /** Make the blob evictable again (a no-op for blobs that are not pinned or not held). */
  async unpin (hash: string): Promise<void> {
    assertBlobHash(hash)
    const entry = this.entries.get(hash)
    const wasPinned = entry?.pinned === true
    const marked = entry === undefined || entry.marked === true || this.pinMarks.has(hash)
    if (entry !== undefined) {
      entry.pinned = false
      entry.marked = false
    }
    if (marked) await this.markPin(hash, false)
    if (wasPinned) await this.evict()
  }

  /**
   * Write or remove a blob's pin marker after every earlier call's for that
   * blob, so that what is on disk follows the calls in order (a job decided
   * and the next job of the same source submitted in the same moment leave
   * the source pinned), as the entry's flag does at once.
   */
  private async markPin (hash: string, pinned: boolean): Promise<void> {
    const path = join(this.dir, PIN_DIR, hash)
    const previous = this.pinMarks.get(hash) ?? Promise.resolve()
    const run = previous.then(async () => { if (pinned) await writeFile(path, ''); else await rm(path, { force: true }) })
    const settled = run.then(() => {}, () => {})
    this.pinMarks.set(hash, settled)
    try {
      await run
    } finally {
      if (this.pinMarks.get(hash) === settled) this.pinMarks.delete(hash)
    }
  }

  private lookup (hash: string): Entry {
    assertBlobHash(hash)
    const entry = this.entries.get(hash)
    if (entry === undefined) throw new BlobNotFoundError(hash)
    return entry
  }

  private tempPath (): string {
    return join(this.dir, TMP_DIR, `${randomBytes(12).toString('hex')}.tmp`)
  }

  /** Rename a verified temp file into place and index it. */
  private async commit (tmp: string, hash: string, size: number, pin: boolean, durable = true): Promise<void> {
    await this.withLock(hash, async () => {
      const existing = this.entries.get(hash)
      if (existing?.verified === true) {
        await rm(tmp, { force: true })
        if (durable && existing.volatile === true) {
          await fsyncPath(this.path(hash))
          await fsyncPath(join(this.dir, hash.slice(0, 2)))
          existing.volatile = false
        }
      } else {
        const prefixDir = join(this.dir, hash.slice(0, 2))
        await mkdir(prefixDir, { recursive: true })
        // Replaces an unverified (possibly damaged) copy found at open: these bytes are checked.
        await rename(tmp, this.path(hash))
        if (durable) await fsyncPath(prefixDir)
      }
      const entry = this.entries.get(hash)
      if (entry === undefined) {
        this.entries.set(hash, { hash, size, pinned: false, readers: 0, verified: true, ...(durable ? {} : { volatile: true }) })
        this.totalBytes += size
      } else {
        this.totalBytes += size - entry.size
        entry.size = size
        entry.verified = true
        this.bump(entry)
      }
    })
    if (pin) await this.pin(hash)
    await this.evict(hash)
  }

  /** Mark a use: move to the most recently used end, and record it in the file's mtime for the next open. */
  private bump (entry: Entry): void {
    if (this.entries.get(entry.hash) !== entry) return
    this.entries.delete(entry.hash)
    this.entries.set(entry.hash, entry)
    const now = new Date()
    utimes(this.path(entry.hash), now, now).catch(() => {})
  }

  private release (entry: Entry): void {
    entry.readers--
    if (entry.readers === 0 && this.totalBytes > this.maxBytes) {
      this.evict().catch((err: unknown) => { log.error('eviction failed: %e', err) })
    }
  }

  /** Evict least recently used blobs until within the bound, never a pinned blob, one being read, or `keep`. */
  private async evict (keep?: string): Promise<void> {
    if (this.totalBytes <= this.maxBytes) return
    const victims: Entry[] = []
    for (const entry of this.entries.values()) {
      if (this.totalBytes <= this.maxBytes) break
      if (entry.pinned || entry.readers > 0 || entry.hash === keep) continue
      victims.push(entry)
      // Out of the index at once, so no new read starts on a blob being deleted.
      this.entries.delete(entry.hash)
      this.totalBytes -= entry.size
    }
    for (const victim of victims) {
      log('evicting %s (%d bytes)', victim.hash, victim.size)
      await this.withLock(victim.hash, async () => { await unlink(this.path(victim.hash)).catch(() => {}) })
    }
  }

  private async ensureVerified (entry: Entry): Promise<void> {
    if (entry.verified) return
    entry.verifying ??= (async () => {
      let actual: { hash: string, size: number }
      const handle = await open(this.path(entry.hash), 'r')
      try {
        actual = await hashHandle(handle)
      } finally {
        await handle.close()
      }
      if (actual.hash === entry.hash) {
        entry.verified = true
        return
      }
      await this.drop(entry, `its bytes hash to ${actual.hash} (${actual.size} bytes)`)
      throw new BlobNotFoundError(entry.hash, `blob ${entry.hash} was damaged on disk and has been removed; fetch it again`)
    })().finally(() => { entry.verifying = undefined })
    await entry.verifying
  }

  /** Remove a damaged blob from the index and the disk. */
  private async drop (entry: Entry, why: string): Promise<void> {
    log.error('removing blob %s: %s', entry.hash, why)
    if (this.entries.get(entry.hash) === entry) {
      this.entries.delete(entry.hash)
      this.totalBytes -= entry.size
    }
    await this.withLock(entry.hash, async () => {
      // Only if nothing re-added it meanwhile.
      if (!this.entries.has(entry.hash)) await unlink(this.path(entry.hash)).catch(() => {})
    })
    // Through the markers' own chain, so that a pin being written meanwhile cannot leave one behind.
    entry.marked = false
    await this.markPin(entry.hash, false)
  }

  private async withLock<T> (hash: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(hash) ?? Promise.resolve()
    const run = previous.then(fn, fn)
    const settled = run.then(() => {}, () => {})
    this.locks.set(hash, settled)
    try {
      return await run
    } finally {
      if (this.locks.get(hash) === settled) this.locks.delete(hash)
    }
  }

  private async loadIndex (): Promise<void> {
    const found: Array<{ hash: string, size: number, mtimeMs: number }> = []
    for (const prefix of await readdir(this.dir)) {
      if (!PREFIX_DIR.test(prefix)) continue
      for (const name of await readdir(join(this.dir, prefix))) {
        if (!isBlobHash(name) || !name.startsWith(prefix)) {
          log('ignoring stray file %s/%s', prefix, name)
          continue
        }
        const info = await stat(join(this.dir, prefix, name)).catch(() => undefined)
        if (info?.isFile() !== true) continue
        found.push({ hash: name, size: info.size, mtimeMs: info.mtimeMs })
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs)
    for (const { hash, size } of found) {
      this.entries.set(hash, { hash, size, pinned: false, readers: 0, verified: false })
      this.totalBytes += size
    }
    log('opened %s: %d blobs, %d bytes', this.dir, this.entries.size, this.totalBytes)
  }

  private async loadPins (): Promise<void> {
    for (const name of await readdir(join(this.dir, PIN_DIR))) {
      const entry = isBlobHash(name) ? this.entries.get(name) : undefined
      if (entry === undefined) {
        // A pin whose blob is gone (or a stray file) protects nothing.
        await rm(join(this.dir, PIN_DIR, name), { force: true, recursive: true })
        continue
      }
      entry.pinned = true
      entry.marked = true
    }
  }
}

async function writeAll (handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset)
    offset += bytesWritten
  }
}

async function hashHandle (handle: FileHandle): Promise<{ hash: string, size: number }> {
  const hasher = createHash('sha256')
  const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES)
  let size = 0
  while (true) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, size)
    if (bytesRead === 0) break
    hasher.update(buffer.subarray(0, bytesRead))
    size += bytesRead
  }
  return { hash: hasher.digest('hex'), size }
}

/** Make a rename in `dir` durable. */
async function fsyncPath (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
