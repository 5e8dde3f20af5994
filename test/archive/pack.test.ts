import { execFileSync } from 'node:child_process'
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { packDirectory, SourceTooLargeError, unpackTarball, UnsafeSourceError } from '../../src/archive/index.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()

async function sampleTree (root: string): Promise<void> {
  await mkdir(join(root, 'src', 'deep'), { recursive: true })
  await writeFile(join(root, 'README'), 'hello\n')
  await writeFile(join(root, 'src', 'main.c'), 'int main(void) { return 0; }\n')
  await writeFile(join(root, 'src', 'deep', 'ünïcode-名前.txt'), 'utf-8 names\n')
  await writeFile(join(root, 'build.sh'), '#!/bin/sh\necho built\n')
  await chmod(join(root, 'build.sh'), 0o700)
  await symlink('src/main.c', join(root, 'main-link.c'))
  await symlink('../README', join(root, 'src', 'readme-link'))
}

describe('packDirectory', () => {
  it('gives the same bytes and hash for the same tree, whatever the mtimes, owners and umask', async () => {
    const a = await tempDir(teardown)
    const b = await tempDir(teardown)
    await sampleTree(a)
    await sampleTree(b)
    // Different mtimes, permissions beyond the normalised ones, owner.
    execFileSync('touch', ['-d', '2001-02-03', join(b, 'README'), join(b, 'src', 'main.c')])
    await chmod(join(b, 'README'), 0o600)
    await chmod(join(b, 'build.sh'), 0o755)
    // Another owner too, where this test may give files away.
    if (process.getuid?.() === 0) execFileSync('chown', ['-R', '12345:54321', b])
    const first = await packDirectory(a)
    const second = await packDirectory(b)
    expect(second.sha256).toBe(first.sha256)
    expect(second.bytes.equals(first.bytes)).toBe(true)
    expect(first.size).toBe(first.bytes.length)
    expect(first.files).toBe(8)
    // Fixed gzip header: no mtime, OS byte 3.
    expect(first.bytes.readUInt32LE(4)).toBe(0)
    expect(first.bytes[9]).toBe(3)
  })

  it('writes sorted entries with normalised metadata that GNU tar reads back', async () => {
    const dir = await tempDir(teardown)
    await sampleTree(dir)
    const packed = await packDirectory(dir)
    const listing = execFileSync('tar', ['-tvzf', '-', '--numeric-owner'], { input: packed.bytes }).toString().trim().split('\n')
    const names = listing.map((line) => line.split(/\s+/).slice(5).join(' '))
    expect(names).toEqual([
      'README',
      'build.sh',
      'main-link.c -> src/main.c',
      'src/',
      'src/deep/',
      'src/deep/ünïcode-名前.txt',
      'src/main.c',
      'src/readme-link -> ../README'
    ])
    for (const line of listing) {
      const [mode, owner, , date] = line.split(/\s+/)
      expect(owner).toBe('0/0')
      expect(date).toBe('1970-01-01')
      expect(['-rw-r--r--', '-rwxr-xr-x', 'drwxr-xr-x', 'lrwxrwxrwx']).toContain(mode)
    }
    expect(listing.find((l) => l.endsWith('build.sh'))!.startsWith('-rwxr-xr-x')).toBe(true)
    expect(listing.find((l) => l.endsWith('README'))!.startsWith('-rw-r--r--')).toBe(true)
    // uname/gname are empty in the raw headers.
    const tar = gunzipSync(packed.bytes)
    expect(tar.subarray(265, 265 + 32).every((byte) => byte === 0)).toBe(true)
  })

  it('round-trips through unpackTarball', async () => {
    const dir = await tempDir(teardown)
    const out = await tempDir(teardown)
    await sampleTree(dir)
    const packed = await packDirectory(dir)
    const result = await unpackTarball(packed.bytes, out, { maxFiles: 100, maxBytes: 1 << 20 })
    expect(result.files).toBe(8)
    expect(await readFile(join(out, 'src', 'deep', 'ünïcode-名前.txt'), 'utf8')).toBe('utf-8 names\n')
    expect(await readFile(join(out, 'main-link.c'), 'utf8')).toContain('int main')
    const repacked = await packDirectory(out)
    expect(repacked.sha256).toBe(packed.sha256)
  })

  it('leaves out .git everywhere, keeps node_modules unless excluded', async () => {
    const dir = await tempDir(teardown)
    await sampleTree(dir)
    await mkdir(join(dir, '.git', 'objects'), { recursive: true })
    await writeFile(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n')
    await writeFile(join(dir, 'src', '.git'), 'gitdir: ../.git/modules/src\n')
    await mkdir(join(dir, 'node_modules', 'dep'), { recursive: true })
    await writeFile(join(dir, 'node_modules', 'dep', 'index.js'), 'module.exports = 1\n')
    const withModules = await packDirectory(dir)
    const names = execFileSync('tar', ['-tzf', '-'], { input: withModules.bytes }).toString()
    expect(names).not.toContain('.git')
    expect(names).toContain('node_modules/dep/index.js')
    const without = await packDirectory(dir, { exclude: ['node_modules'] })
    expect(execFileSync('tar', ['-tzf', '-'], { input: without.bytes }).toString()).not.toContain('node_modules')
    const plain = await tempDir(teardown)
    await sampleTree(plain)
    expect(without.sha256).toBe((await packDirectory(plain)).sha256)
  })

  it('refuses symlinks leaving the tree, naming the path', async () => {
    for (const target of ['/etc/passwd', '../../outside', '../src/../../outside', 'deep/../../..']) {
      const dir = await tempDir(teardown)
      await sampleTree(dir)
      await symlink(target, join(dir, 'src', 'escape'))
      const err = await packDirectory(dir).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnsafeSourceError)
      expect((err as UnsafeSourceError).name).toBe('UnsafeSourceError')
      expect((err as UnsafeSourceError).path).toBe('src/escape')
      expect((err as Error).message).toContain('src/escape')
    }
  })

  it('refuses a link that leaves the tree only through another link', async () => {
    const dir = await tempDir(teardown)
    await mkdir(join(dir, 'sub'))
    await symlink('..', join(dir, 'sub', 'up')) // sub/up → the root: fine alone
    await symlink('up/..', join(dir, 'sub', 'out')) // lexically "sub", really the root's parent
    const err = await packDirectory(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnsafeSourceError)
    expect((err as UnsafeSourceError).path).toBe('sub/out')
  })

  it('refuses fifos and sockets', async () => {
    const dir = await tempDir(teardown)
    await sampleTree(dir)
    execFileSync('mkfifo', [join(dir, 'src', 'pipe')])
    const err = await packDirectory(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnsafeSourceError)
    expect((err as Error).message).toContain('src/pipe is a fifo')
  })

  it('says the size and the limit when the tree is too large', async () => {
    const dir = await tempDir(teardown)
    await writeFile(join(dir, 'big'), Buffer.alloc(5000))
    await writeFile(join(dir, 'small'), Buffer.alloc(100))
    const bytes = await packDirectory(dir, { maxBytes: 4096 }).catch((e: unknown) => e)
    expect(bytes).toBeInstanceOf(SourceTooLargeError)
    expect((bytes as Error).message).toContain('5100 bytes')
    expect((bytes as Error).message).toContain('limit of 4096 bytes')
    const files = await packDirectory(dir, { maxFiles: 1 }).catch((e: unknown) => e)
    expect(files).toBeInstanceOf(SourceTooLargeError)
    expect((files as Error).message).toContain('2 entries, over the limit of 1')
  })
})
