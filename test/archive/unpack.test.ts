import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { beforeEach, describe, expect, it } from 'vitest'
import { unpackTarball, UnsafeArchiveError, type UnsafeArchiveReason } from '../../src/archive/index.js'
import { DIRECT_ENTRIES, type UnpackOptions } from '../../src/archive/unpack.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { dir, file, hardlinkEntry, makeTar, makeTarGz, symlinkEntry, type RawEntry } from './hostile-tarballs.js'

const teardown = useTeardown()
const LIMITS = { maxFiles: 100, maxBytes: 1 << 20 }

/** Every test runs both ways a buffer may be unpacked: direct system calls (small buffers), and the thread pool. */
let options: UnpackOptions = {}
async function unpack (input: Buffer | Readable, dest: string, limits: { maxFiles: number, maxBytes: number }): ReturnType<typeof unpackTarball> {
  return await unpackTarball(input, dest, limits, options)
}

/** A scratch dir holding `dest` (where the archive goes) beside `outside` (which must stay empty). */
async function arena (): Promise<{ dest: string, outside: string, base: string }> {
  const base = await tempDir(teardown)
  const dest = join(base, 'dest')
  const outside = join(base, 'outside')
  await mkdir(dest)
  await mkdir(outside)
  return { base, dest, outside }
}

async function refused (input: Buffer | Readable, dest: string, reason: UnsafeArchiveReason, entry?: string, limits = LIMITS): Promise<UnsafeArchiveError> {
  const err = await unpack(input, dest, limits).then(() => undefined, (e: unknown) => e)
  expect(err, `expected a refusal (${reason})`).toBeInstanceOf(UnsafeArchiveError)
  const unsafe = err as UnsafeArchiveError
  expect(unsafe.name).toBe('UnsafeArchiveError')
  expect(unsafe.reason).toBe(reason)
  if (entry !== undefined) {
    expect(unsafe.entry).toBe(entry)
    expect(unsafe.message).toContain(entry)
  }
  return unsafe
}

async function expectNothingEscaped (base: string, outside: string): Promise<void> {
  expect(await readdir(outside)).toEqual([])
  expect((await readdir(base)).sort()).toEqual(['dest', 'outside'])
}

describe.each([
  ['direct system calls for a small buffer', {}],
  ['the thread pool throughout', { directEntries: 0 }]
] as Array<[string, UnpackOptions]>)('unpackTarball, %s', (_way, mode) => {
  beforeEach(() => { options = mode })

  it('unpacks files, directories, links, modes and mtimes from a gzip or a plain tar, buffer or stream', async () => {
    const entries: RawEntry[] = [
      dir('./pkg/'),
      file('pkg/a.txt', 'alpha'),
      { header: { name: 'pkg/run.sh', type: 'file', mode: 0o4755, mtime: new Date(1_000_000_000_000) }, content: '#!/bin/sh\n' },
      symlinkEntry('pkg/link', 'a.txt'),
      hardlinkEntry('pkg/hard', 'pkg/a.txt'),
      file('top.txt', 'top')
    ]
    for (const input of [await makeTarGz(entries), await makeTar(entries), Readable.from([await makeTarGz(entries)])]) {
      const { dest } = await arena()
      const result = await unpack(input, dest, LIMITS)
      expect(result).toEqual({ files: 6, bytes: 'alpha'.length + '#!/bin/sh\n'.length + 'top'.length })
      expect(await readFile(join(dest, 'pkg', 'link'), 'utf8')).toBe('alpha')
      expect(await readFile(join(dest, 'pkg', 'hard'), 'utf8')).toBe('alpha')
      const run = await lstat(join(dest, 'pkg', 'run.sh'))
      expect(run.mode & 0o7777).toBe(0o755) // setuid dropped
      expect(run.mtimeMs).toBe(1_000_000_000_000)
      expect((await lstat(join(dest, 'pkg', 'a.txt'))).mode & 0o7777).toBe(0o644)
    }
  })

  it('takes a stream delivered a byte at a time', async () => {
    const { dest } = await arena()
    const bytes = await makeTarGz([file('a', 'hello')])
    const slow = Readable.from((function * () { for (const byte of bytes) yield Buffer.from([byte]) })())
    expect(await unpack(slow, dest, LIMITS)).toEqual({ files: 1, bytes: 5 })
  })

  it('refuses absolute paths', async () => {
    const { base, dest, outside } = await arena()
    await refused(await makeTarGz([file(join(outside, 'pwned'))]), dest, 'absolute-path', join(outside, 'pwned'))
    await expectNothingEscaped(base, outside)
  })

  it('refuses .. components', async () => {
    const { base, dest, outside } = await arena()
    await refused(await makeTarGz([file('../outside/pwned')]), dest, 'parent-path', '../outside/pwned')
    await refused(await makeTarGz([file('a/../../outside/pwned')]), dest, 'parent-path', 'a/../../outside/pwned')
    await expectNothingEscaped(base, outside)
  })

  it('refuses symlinks pointing outside, absolute or relative', async () => {
    const { base, dest, outside } = await arena()
    await refused(await makeTarGz([symlinkEntry('abs', outside)]), dest, 'link-outside', 'abs')
    await refused(await makeTarGz([symlinkEntry('a/b/rel', '../../../outside')]), dest, 'link-outside', 'a/b/rel')
    await expectNothingEscaped(base, outside)
  })

  it('never writes a file through a symlink planted earlier in the same archive', async () => {
    const { base, dest, outside } = await arena()
    // sub/up → the root and sub/out → "up/.." each look inside on their own;
    // sub/out really is dest's parent, so sub/out/outside/pwned would land in `outside`.
    await refused(await makeTarGz([
      dir('sub'),
      symlinkEntry('sub/up', '..'),
      symlinkEntry('sub/out', 'up/..'),
      file('sub/out/outside/pwned', 'gotcha')
    ]), dest, 'link-outside', 'sub/out/outside/pwned')
    await expectNothingEscaped(base, outside)
  })

  it('refuses a link that leaves only through a link added after it', async () => {
    const { base, dest, outside } = await arena()
    const err = await refused(await makeTarGz([
      dir('sub'),
      symlinkEntry('sub/out', 'up/..'), // "sub" when written: sub/up does not exist yet
      symlinkEntry('sub/up', '..')
    ]), dest, 'link-outside', 'sub/out')
    expect(err.message).toContain('up/..')
    // The escaping link is not left behind.
    expect(existsSync(join(dest, 'sub', 'out'))).toBe(false)
    await expectNothingEscaped(base, outside)
  })

  it('replaces a planted symlink by a later file of the same name instead of writing through it', async () => {
    const { dest } = await arena()
    await unpack(await makeTarGz([
      file('victim.txt', 'original'),
      symlinkEntry('f', 'victim.txt'),
      file('f', 'replacement')
    ]), dest, LIMITS)
    expect(await readFile(join(dest, 'victim.txt'), 'utf8')).toBe('original')
    expect((await lstat(join(dest, 'f'))).isFile()).toBe(true)
    expect(await readFile(join(dest, 'f'), 'utf8')).toBe('replacement')
  })

  it('refuses hard links to anything but a file already unpacked', async () => {
    const { base, dest, outside } = await arena()
    await refused(await makeTarGz([hardlinkEntry('h', '/etc/passwd')]), dest, 'link-outside', 'h')
    await refused(await makeTarGz([hardlinkEntry('h', '../outside/x')]), dest, 'link-outside', 'h')
    await refused(await makeTarGz([file('real', 'r'), symlinkEntry('soft', 'real'), hardlinkEntry('h', 'soft')]), dest, 'link-outside', 'h')
    await refused(await makeTarGz([symlinkEntry('d', '.'), file('real2', 'r'), hardlinkEntry('h2', 'd/real2')]), dest, 'link-outside', 'h2')
    await expectNothingEscaped(base, outside)
  })

  it('keeps a file that a later hard link names as its own target (found by the fuzzer)', async () => {
    const { base, dest, outside } = await arena()
    await unpack(await makeTarGz([file('b', 'kept'), hardlinkEntry('b', 'b'), file('a', '')]), dest, LIMITS)
    expect(await readFile(join(dest, 'b'), 'utf8')).toBe('kept')
    await expectNothingEscaped(base, outside)
  })

  it('refuses device nodes and fifos', async () => {
    const { dest } = await arena()
    await refused(await makeTarGz([{ header: { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 } }]), dest, 'special-file', 'null')
    await refused(await makeTarGz([{ header: { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 } }]), dest, 'special-file', 'sda')
    await refused(await makeTarGz([{ header: { name: 'fifo', type: 'fifo' } }]), dest, 'special-file', 'fifo')
  })

  it('refuses too many entries', async () => {
    const { dest } = await arena()
    const entries = Array.from({ length: 11 }, (_, i) => file(`f${i}`))
    await refused(await makeTarGz(entries), dest, 'too-many-files', 'f10', { maxFiles: 10, maxBytes: 1 << 20 })
  })

  it('refuses an entry over the size bound before writing it, and a total over the bound', async () => {
    const { dest } = await arena()
    await refused(await makeTarGz([file('big', Buffer.alloc(5000))]), dest, 'too-large', 'big', { maxFiles: 10, maxBytes: 4096 })
    expect(existsSync(join(dest, 'big'))).toBe(false)
    await refused(await makeTarGz([file('a', Buffer.alloc(3000)), file('b', Buffer.alloc(3000))]), dest, 'too-large', 'b', { maxFiles: 10, maxBytes: 4096 })
  })

  it('stops a gzip bomb early', async () => {
    const { dest } = await arena()
    // A valid tar followed by 64 MiB of zeros compresses to about 64 KB.
    const tar = await makeTar([file('a', 'x')])
    const bomb = gzipSync(Buffer.concat([tar, Buffer.alloc(64 * 1024 * 1024)]))
    expect(bomb.length).toBeLessThan(1024 * 1024)
    const err = await refused(bomb, dest, 'too-large', undefined, { maxFiles: 10, maxBytes: 64 * 1024 })
    // Stopped on the decompressed stream, not after inflating all of it.
    expect(err.message).toMatch(/expands to more than \d+ bytes/)
  })

  it('refuses garbage, truncated and empty input', async () => {
    const { dest } = await arena()
    const good = await makeTarGz([file('a', 'x'.repeat(10_000))])
    await refused(randomBytes(4096), dest, 'not-a-tarball')
    await refused(Buffer.from('this is not a tarball at all\n'.repeat(100)), dest, 'not-a-tarball')
    await refused(good.subarray(0, good.length - 40), dest, 'not-a-tarball')
    await refused(gzipSync(randomBytes(4096)), dest, 'not-a-tarball')
    await refused(Buffer.alloc(0), dest, 'not-a-tarball')
    const plain = await makeTar([file('a', 'x'.repeat(10_000))])
    await refused(plain.subarray(0, 700), dest, 'not-a-tarball')
  })

  it('names the real cause when the gzip ends inside a member (fuzzer seed -1906205553: was "Stream was destroyed")', async () => {
    // 155 bytes from the fuzzer: inflates to the header of a.txt (6 bytes) and then the deflate stream stops.
    const cut = Buffer.from(
      '1f8b0800000000000203edd8575013daba07f010544aa88227080aa1881b50082da1089122d22174084510020a9b00090610dc028274a41729a1231d23106ae852a41785d03b4814294a1138739ece9c' +
      'f370cec3bd7bcfdcb9fe5ebef5facd9aff7fcd2c7b719c0f0ef0e78242a1301919c83f26140afdf7f90f30c83fcf500854122a2923050140017f016f2ccede0b0085fe2f2cf92fcbfd1f61', 'hex')
    expect(cut.length).toBe(155)
    const { dest } = await arena()
    const err = await refused(cut, dest, 'not-a-tarball')
    expect(err.message).toContain('unexpected end of file')
    expect(err.message).not.toMatch(/premature close|destroyed/i)
    expect((err.cause as NodeJS.ErrnoException).code).toBe('Z_BUF_ERROR')
  })

  it('keeps relative links that stay inside', async () => {
    const { dest } = await arena()
    await unpack(await makeTarGz([
      dir('include'),
      file('include/a.h', '#define A 1\n'),
      dir('src/sub'),
      symlinkEntry('src/sub/a.h', '../../include/a.h'),
      symlinkEntry('src/self', '.'),
      symlinkEntry('dangling', 'not-there')
    ]), dest, LIMITS)
    expect(await readlink(join(dest, 'src', 'sub', 'a.h'))).toBe('../../include/a.h')
    expect(await readFile(join(dest, 'src', 'sub', 'a.h'), 'utf8')).toContain('#define A')
  })

  it('keeps its guarantees across the switch from direct calls to the thread pool', async () => {
    const first = await arena()
    const files = (count: number): RawEntry[] => Array.from({ length: count }, (_, i) => file(`f${i}`, String(i)))
    // The link is the last member written directly; the file of the same name comes through the pool and replaces it.
    await unpack(await makeTarGz([...files(DIRECT_ENTRIES - 1), symlinkEntry('x', 'f0'), file('x', 'mine')]), first.dest, LIMITS)
    expect((await lstat(join(first.dest, 'x'))).isFile()).toBe(true)
    expect(await readFile(join(first.dest, 'x'), 'utf8')).toBe('mine')
    expect(await readFile(join(first.dest, 'f0'), 'utf8')).toBe('0')
    const second = await arena()
    await refused(await makeTarGz([...files(DIRECT_ENTRIES), symlinkEntry('up', '../../outside')]), second.dest, 'link-outside', 'up')
    await expectNothingEscaped(second.base, second.outside)
  })
})
