import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { appendFile, readdir, readFile, stat, truncate, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { text } from 'node:stream/consumers'
import { describe, expect, it } from 'vitest'
import { blobHashOf } from '../../src/blobs/hash.js'
import { BlobStore } from '../../src/blobs/store.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()

async function openStore (maxBytes = 1024 * 1024, dir?: string): Promise<BlobStore> {
  return await BlobStore.open({ dir: dir ?? join(await tempDir(teardown), 'blobs'), maxBytes })
}

async function * chunksOf (bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) yield bytes.subarray(i, i + size)
}

describe('BlobStore', () => {
  it('stores bytes under their sha256 and gives them back', async () => {
    const store = await openStore()
    const data = new TextEncoder().encode('hello, mesh\n')
    const { hash, size } = await store.put(data)
    expect(hash).toBe(blobHashOf(data))
    expect(size).toBe(data.byteLength)
    expect(await store.has(hash)).toBe(true)
    expect(await store.stat(hash)).toEqual({ size, pinned: false })
    expect(store.path(hash)).toBe(join(store.dir, hash.slice(0, 2), hash))
    expect(await readFile(store.path(hash), 'utf8')).toBe('hello, mesh\n')
    expect((await store.readBytes(hash, 100)).toString()).toBe('hello, mesh\n')
    expect(await text(store.read(hash))).toBe('hello, mesh\n')
    expect(store.usage()).toMatchObject({ bytes: size, count: 1, pinned: 0 })
  })

  it('stores a blob without waiting for the disk (durable: false) like any other, across a reopen; the same bytes stored durably later are kept once', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const store = await openStore(1024 * 1024, dir)
    const data = new TextEncoder().encode('$ true\n[step true: exit 0, 3 ms]\n')
    const { hash } = await store.put(data, { durable: false })
    expect((await store.readBytes(hash, 100)).toString()).toBe(new TextDecoder().decode(data))
    expect(await store.put(data)).toEqual({ hash, size: data.byteLength })
    expect(store.usage()).toMatchObject({ bytes: data.byteLength, count: 1 })
    const reopened = await openStore(1024 * 1024, dir)
    expect(await reopened.verify(hash)).toBe(true)
  })

  it('stores a stream of chunks and an empty blob', async () => {
    const store = await openStore()
    const data = randomBytes(300_000)
    expect(await store.put(chunksOf(data, 7_000))).toEqual({ hash: blobHashOf(data), size: data.byteLength })
    expect(Buffer.compare(await store.readBytes(blobHashOf(data), data.byteLength), data)).toBe(0)
    const empty = await store.put(new Uint8Array(0))
    expect(empty).toEqual({ hash: blobHashOf(new Uint8Array(0)), size: 0 })
    expect((await store.readBytes(empty.hash, 0)).byteLength).toBe(0)
  })

  it('refuses bytes that do not match the expected hash and keeps nothing', async () => {
    const store = await openStore()
    const expected = blobHashOf(Buffer.from('the real thing'))
    await expect(store.put(Buffer.from('an impostor'), { expected })).rejects.toMatchObject({ name: 'BlobHashMismatchError', expected })
    expect(await store.has(expected)).toBe(false)
    expect(store.usage().count).toBe(0)
    expect(await readdir(join(store.dir, 'tmp'))).toEqual([])
  })

  it('refuses a stream that runs past maxBytes and keeps nothing', async () => {
    const store = await openStore()
    const data = randomBytes(10_000)
    await expect(store.put(chunksOf(data, 1000), { maxBytes: 9_999 })).rejects.toMatchObject({ name: 'BlobTooLargeError' })
    expect(store.usage().count).toBe(0)
    expect(await readdir(join(store.dir, 'tmp'))).toEqual([])
    // Exactly at the bound is fine.
    await expect(store.put(chunksOf(data, 1000), { maxBytes: 10_000 })).resolves.toMatchObject({ size: 10_000 })
  })

  it('refuses an unpinned blob larger than the whole store, but keeps a pinned one', async () => {
    const store = await openStore(1000)
    await expect(store.put(randomBytes(1001))).rejects.toMatchObject({ name: 'BlobTooLargeError' })
    const pinned = await store.put(randomBytes(1001), { pin: true })
    expect(await store.stat(pinned.hash)).toEqual({ size: 1001, pinned: true })
  })

  it('throws stable errors for missing blobs and invalid hashes, never touching paths outside the store', async () => {
    const store = await openStore()
    const missing = 'ab'.repeat(32)
    expect(() => store.read(missing)).toThrow(expect.objectContaining({ name: 'BlobNotFoundError' }))
    await expect(store.readBytes(missing, 10)).rejects.toMatchObject({ name: 'BlobNotFoundError' })
    expect(await store.stat(missing)).toBeUndefined()
    for (const bad of ['../../etc/passwd', 'AB'.repeat(32), 'ab'.repeat(31), `${'ab'.repeat(31)}/x`, '', `../${'a'.repeat(61)}`]) {
      expect(() => store.path(bad)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }))
      expect(() => store.read(bad)).toThrow(expect.objectContaining({ name: 'InvalidInputError' }))
      await expect(store.has(bad)).rejects.toMatchObject({ name: 'InvalidInputError' })
      await expect(store.put(Buffer.from('x'), { expected: bad })).rejects.toMatchObject({ name: 'InvalidInputError' })
      await expect(store.pin(bad)).rejects.toMatchObject({ name: 'InvalidInputError' })
    }
  })

  it('evicts the least recently used blobs beyond the bound; reads count as use', async () => {
    const store = await openStore(1000)
    const a = await store.put(randomBytes(300))
    const b = await store.put(randomBytes(300))
    const c = await store.put(randomBytes(300))
    await store.readBytes(a.hash, 300) // a is now the most recently used
    const d = await store.put(randomBytes(300)) // 1200 > 1000: b goes
    expect(await store.has(b.hash)).toBe(false)
    expect(existsSync(store.path(b.hash))).toBe(false)
    expect(store.list().map((x) => x.hash)).toEqual([c.hash, a.hash, d.hash])
    const e = await store.put(randomBytes(500)) // 1400: c, then a go
    expect(store.list().map((x) => x.hash)).toEqual([d.hash, e.hash])
    expect(store.usage()).toMatchObject({ bytes: 800, count: 2 })
  })

  it('never evicts pinned blobs; unpinning makes them evictable again', async () => {
    const store = await openStore(1000)
    const source = await store.put(randomBytes(400), { pin: true })
    const other = await store.put(randomBytes(400))
    await store.put(randomBytes(400)) // over: `other` goes, not the older pinned source
    expect(await store.has(source.hash)).toBe(true)
    expect(await store.has(other.hash)).toBe(false)
    expect(store.usage()).toMatchObject({ pinned: 1, pinnedBytes: 400 })
    await store.put(randomBytes(700)) // evicts what it can; the pin holds even over the bound
    expect(await store.has(source.hash)).toBe(true)
    await store.unpin(source.hash)
    expect(await store.has(source.hash)).toBe(false)
    expect(store.usage().bytes).toBeLessThanOrEqual(1000)
  })

  it('takes pins and unpins of one blob in call order, on disk as in memory, even when they overlap', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const store = await openStore(1000, dir)
    const source = await store.put(randomBytes(400), { pin: true })
    // A job decided (unpin) and the next job of the same source submitted (pin) in the same moment: the pin is the last word.
    await Promise.all([store.unpin(source.hash), store.pin(source.hash)])
    expect(await store.stat(source.hash)).toEqual({ size: 400, pinned: true })
    await Promise.all([store.pin(source.hash), store.unpin(source.hash), store.pin(source.hash)])
    expect(await store.stat(source.hash)).toEqual({ size: 400, pinned: true })
    // Marked at once: eviction meanwhile never takes a blob whose pin is still being written.
    const pinning = store.pin((await store.put(randomBytes(300))).hash)
    expect(store.usage()).toMatchObject({ pinned: 2 })
    await pinning
    await store.put(randomBytes(400)) // over the bound: nothing pinned goes
    expect(store.usage()).toMatchObject({ pinned: 2, pinnedBytes: 700 })
    const reopened = await openStore(1000, dir)
    expect(await reopened.stat(source.hash)).toEqual({ size: 400, pinned: true })
    await Promise.all([store.pin(source.hash), store.unpin(source.hash)])
    // Unpinned last: the store is over its bound, so the source (the least recently used) goes, marker and all.
    expect(await store.stat(source.hash)).toBeUndefined()
    expect(existsSync(join(dir, 'pins', source.hash))).toBe(false)
  })

  it('keeps a pin made with persist: false in memory only: no marker, forgotten at a reopen', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const store = await openStore(1000, dir)
    const source = await store.put(randomBytes(400))
    await store.pin(source.hash, { persist: false })
    expect(await store.stat(source.hash)).toEqual({ size: 400, pinned: true })
    expect(existsSync(join(dir, 'pins', source.hash))).toBe(false)
    await store.put(randomBytes(700)) // over the bound: the pinned source stays
    expect(await store.stat(source.hash)).toEqual({ size: 400, pinned: true })
    expect(await (await openStore(10_000, dir)).stat(source.hash)).toEqual({ size: 400, pinned: false })
    // A lasting pin of a blob pinned in memory writes its marker; an unpin removes it.
    await store.pin(source.hash)
    expect(existsSync(join(dir, 'pins', source.hash))).toBe(true)
    await store.unpin(source.hash)
    expect(existsSync(join(dir, 'pins', source.hash))).toBe(false)
  })

  it('never evicts a blob while it is being read', async () => {
    const store = await openStore(100_000)
    const big = randomBytes(60_000)
    const { hash } = await store.put(big)
    const { stream } = await store.openRead(hash)
    const newer = await store.put(randomBytes(60_000)) // over the bound, but `big` is open
    expect(await store.has(hash)).toBe(true)
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    expect(Buffer.compare(Buffer.concat(chunks), big)).toBe(0)
    // Once the read is over, the bound is enforced again.
    await expect.poll(async () => await store.has(hash)).toBe(false)
    expect(await store.has(newer.hash)).toBe(true)
  })

  it('keeps pins and the LRU order across a restart', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const first = await openStore(1000, dir)
    const pinned = await first.put(randomBytes(300), { pin: true })
    const old = await first.put(randomBytes(300))
    const recent = await first.put(randomBytes(300))
    // mtimes carry the order; make it unambiguous on coarse-grained file systems
    const { utimes } = await import('node:fs/promises')
    await utimes(first.path(old.hash), new Date(1_000_000), new Date(1_000_000))
    await utimes(first.path(pinned.hash), new Date(500_000), new Date(500_000))

    const second = await openStore(1000, dir)
    expect(second.usage()).toMatchObject({ count: 3, bytes: 900, pinned: 1 })
    await second.put(randomBytes(300))
    expect(await second.has(pinned.hash)).toBe(true)
    expect(await second.has(old.hash)).toBe(false)
    expect(await second.has(recent.hash)).toBe(true)
  })

  it('cleans temp files left by a crash, and never serves a truncated blob', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const first = await openStore(1_000_000, dir)
    const data = randomBytes(50_000)
    const { hash } = await first.put(data)
    // A crash mid-write leaves a temp file; a disk fault (or a crash on a file system that reorders) leaves a short blob.
    await writeFile(join(dir, 'tmp', 'deadbeef.tmp'), randomBytes(1000))
    await truncate(first.path(hash), 20_000)
    // A file that is not a blob is left alone and not indexed.
    await mkdir(join(dir, 'zz'), { recursive: true })
    await writeFile(join(dir, 'zz', 'notes.txt'), 'hi')

    const second = await openStore(1_000_000, dir)
    expect(await readdir(join(dir, 'tmp'))).toEqual([])
    await expect(second.readBytes(hash, 100_000)).rejects.toMatchObject({ name: 'BlobNotFoundError' })
    expect(await second.has(hash)).toBe(false)
    expect(existsSync(second.path(hash))).toBe(false)
    expect(second.usage()).toMatchObject({ count: 0, bytes: 0 })
    // The bytes can be stored again, and are then served whole.
    await second.put(data)
    expect(Buffer.compare(await second.readBytes(hash, 100_000), data)).toBe(0)
  })

  it('readBytes never serves a blob whose file changed size after it was checked, longer or shorter', async () => {
    const store = await openStore(1_000_000)
    for (const damage of ['longer', 'shorter'] as const) {
      const data = randomBytes(10_000)
      const { hash } = await store.put(data)
      expect(Buffer.compare(await store.readBytes(hash, 100_000), data)).toBe(0)
      if (damage === 'longer') await appendFile(store.path(hash), 'more')
      else await truncate(store.path(hash), 9_999)
      await expect(store.readBytes(hash, 100_000)).rejects.toMatchObject({ name: 'BlobNotFoundError' })
      expect(await store.has(hash)).toBe(false)
      // Stored again, it is served whole.
      await store.put(data)
      expect(Buffer.compare(await store.readBytes(hash, 100_000), data)).toBe(0)
    }
  })

  it('a damaged blob errors its read stream instead of delivering wrong bytes', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const first = await openStore(1_000_000, dir)
    const { hash } = await first.put(randomBytes(10_000))
    const bytes = await readFile(first.path(hash))
    bytes[5000] ^= 0xff
    await writeFile(first.path(hash), bytes)
    const second = await openStore(1_000_000, dir)
    expect(await second.has(hash)).toBe(true) // not known to be damaged until checked
    await expect(text(second.read(hash))).rejects.toMatchObject({ name: 'BlobNotFoundError' })
    expect(await second.has(hash)).toBe(false)
    expect(await second.verify(hash)).toBe(false)
  })

  it('putFile copies a file, or moves it into the store', async () => {
    const scratch = await tempDir(teardown)
    const store = await openStore(1_000_000)
    const data = randomBytes(20_000)
    const copied = join(scratch, 'artifact.bin')
    await writeFile(copied, data)
    const viaCopy = await store.putFile(copied)
    expect(viaCopy).toEqual({ hash: blobHashOf(data), size: 20_000 })
    expect(existsSync(copied)).toBe(true)

    const moved = join(scratch, 'log.txt')
    const log = Buffer.from('step 1 ok\nstep 2 ok\n')
    await writeFile(moved, log)
    const viaMove = await store.putFile(moved, { move: true, pin: true })
    expect(viaMove).toEqual({ hash: blobHashOf(log), size: log.byteLength })
    expect(existsSync(moved)).toBe(false)
    expect(await store.stat(viaMove.hash)).toEqual({ size: log.byteLength, pinned: true })
    expect((await stat(store.path(viaMove.hash))).size).toBe(log.byteLength)

    // A file too big for the store is handed back, not lost.
    const small = await openStore(100)
    const tooBig = join(scratch, 'big.bin')
    await writeFile(tooBig, randomBytes(200))
    await expect(small.putFile(tooBig, { move: true })).rejects.toMatchObject({ name: 'BlobTooLargeError' })
    expect((await stat(tooBig)).size).toBe(200)
  })

  it('refuses a non-positive bound', async () => {
    const dir = await tempDir(teardown)
    await expect(BlobStore.open({ dir, maxBytes: 0 })).rejects.toMatchObject({ name: 'UsageError' })
  })
})
