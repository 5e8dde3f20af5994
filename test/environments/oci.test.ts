import { createHash } from 'node:crypto'
import { lstat, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { EnvironmentStore, importImageArchive, manifestHash, parseManifest, manifestBytes } from '../../src/environments/index.js'
import type { Executor } from '../../src/sandbox/index.js'
import { hostShellEntries, tarOf, writeOciArchive, type LayerEntry } from '../helpers/oci-image.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, runJob, source } from '../sandbox/helpers.js'

/**
 * Environments imported from container image archives (an OCI layout in a
 * tar, as `docker save` writes it), built here from the host's own /bin/sh
 * and libc: no Docker and no network needed. Real bubblewrap runs steps in
 * them.
 */

const BASE_LAYER: LayerEntry[] = [
  ...hostShellEntries(),
  { type: 'directory', name: 'etc/' },
  { type: 'file', name: 'etc/os-release', content: 'NAME="Tiny"\nPRETTY_NAME="Tiny Test OS 1"\nID=tiny\n' },
  { type: 'file', name: 'etc/removed.txt', content: 'a lower layer wrote this\n' },
  { type: 'symlink', name: 'etc/resolv.conf', target: '../run/resolv.conf' },
  { type: 'directory', name: 'opt/' },
  { type: 'directory', name: 'opt/old/' },
  { type: 'file', name: 'opt/old/a.txt', content: 'hidden by the opaque marker\n' },
  { type: 'directory', name: 'usr/' },
  { type: 'directory', name: 'usr/local/' },
  { type: 'file', name: 'usr/local/suid', content: '#!/bin/sh\n', mode: 0o4755 },
  { type: 'directory', name: 'lib/apk/' },
  { type: 'directory', name: 'lib/apk/db/' },
  { type: 'file', name: 'lib/apk/db/installed', content: 'C:Q1abc=\nP:tiny-base\nV:1.0-r0\nA:x86_64\n\nC:Q1def=\nP:dash\nV:0.5.12-r2\nA:x86_64\n\n' }
]

const UPPER_LAYER: LayerEntry[] = [
  { type: 'file', name: 'etc/.wh.removed.txt', content: '' },
  { type: 'file', name: 'opt/old/.wh..wh..opq', content: '' },
  { type: 'file', name: 'opt/old/b.txt', content: 'written by the upper layer\n' },
  { type: 'link', name: 'opt/old/b-again.txt', target: 'opt/old/b.txt' },
  { type: 'symlink', name: 'opt/sh', target: '/bin/sh' }
]

async function image (dir: string, layers = [{ entries: BASE_LAYER, gzip: true }, { entries: UPPER_LAYER }]): Promise<{ file: string, digest: string }> {
  const file = join(dir, 'image.tar')
  const digest = await writeOciArchive(file, layers)
  return { file, digest }
}

describe('importing an OCI image archive', () => {
  const teardown = useTeardown()

  it('stacks the layers (whiteouts, opaque directories, links), drops setuid bits, and records the image and its packages', async () => {
    const dir = await tempDir(teardown)
    const { file, digest } = await image(dir)
    const root = join(dir, 'root')
    const manifest = await importImageArchive(file, 'tiny-1', root)

    expect(manifest).toMatchObject({ v: 1, name: 'tiny-1', origin: 'oci', date: '2026-12-01T00:00:00Z', image: digest, architecture: 'x86_64' })
    expect(manifest.packages).toEqual(['dash (= 0.5.12-r2)', 'tiny-base (= 1.0-r0)'])
    // The manifest's bytes name it, and parse back to the same.
    expect(parseManifest(manifestBytes(manifest))).toEqual(manifest)
    expect(manifestHash(manifest)).toMatch(/^[0-9a-f]{64}$/)

    await expect(stat(join(root, 'etc/removed.txt'))).rejects.toThrow()
    expect(await readdir(join(root, 'opt/old'))).toEqual(['b-again.txt', 'b.txt'])
    expect((await stat(join(root, 'opt/old/b-again.txt'))).ino).toBe((await stat(join(root, 'opt/old/b.txt'))).ino)
    expect((await stat(join(root, 'usr/local/suid'))).mode & 0o7777).toBe(0o755)
    // Mount points are real directories, and a link where a bound file goes is replaced by an empty file.
    for (const point of ['build', 'tmp', 'var/tmp', 'dev', 'proc']) expect((await lstat(join(root, point))).isDirectory()).toBe(true)
    const resolv = await lstat(join(root, 'etc/resolv.conf'))
    expect(resolv.isFile() && resolv.size === 0).toBe(true)
  })

  it('reads the older `docker save` format too (manifest.json and <id>/layer.tar)', async () => {
    const dir = await tempDir(teardown)
    const layer = await tarOf(BASE_LAYER)
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2026-11-30T00:00:00Z' }))
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`
    const file = join(dir, 'docker.tar')
    await writeFile(file, await tarOf([
      { type: 'file', name: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: ['tiny:1'], Layers: ['abc123/layer.tar'] }]) },
      { type: 'file', name: configName, content: config },
      { type: 'directory', name: 'abc123/' },
      { type: 'file', name: 'abc123/layer.tar', content: layer }
    ]))
    const manifest = await importImageArchive(file, 'tiny-docker', join(dir, 'root'))
    expect(manifest).toMatchObject({ origin: 'oci', image: `sha256:${configName.slice(0, -5)}`, date: '2026-11-30T00:00:00Z' })
    expect(manifest.packages).toEqual(['dash (= 0.5.12-r2)', 'tiny-base (= 1.0-r0)'])
  })

  it('refuses an archive that is not an image, naming how to make one', async () => {
    const dir = await tempDir(teardown)
    const file = join(dir, 'not-an-image.tar')
    await writeFile(file, await tarOf([{ type: 'file', name: 'hello.txt', content: 'hi' }]))
    await expect(importImageArchive(file, 'nothing', join(dir, 'root'))).rejects.toThrow(/docker save/)
  })
})

describe('building in an imported environment', () => {
  const teardown = useTeardown()
  let executor: Executor
  let store: EnvironmentStore
  let storeDir: string

  beforeAll(async () => {
    executor = await bubblewrap()
  })

  it('runs every step with the environment as a read-only root, a fresh /tmp per step, and leaves nothing behind', async () => {
    storeDir = await tempDir(teardown, 'buildhaus-envs-')
    store = await EnvironmentStore.open({ dir: storeDir, maxBytes: 1024 * 1024 * 1024 })
    const { file } = await image(await tempDir(teardown))
    const info = await store.import('tiny-1', file)
    const lease = await store.acquire({ name: 'tiny-1' })
    teardown(async () => { await lease.release() })
    const before = await treeListing(lease.root)
    const workRoot = await tempDir(teardown)
    const steps = [
      { name: 'inside', run: 'read line < /etc/os-release; read line < /etc/os-release; echo "system: $(while read l; do case $l in PRETTY_NAME=*) echo $l;; esac; done < /etc/os-release)"; echo x > /tmp/mark; echo kept > out.txt' },
      { name: 'fresh-tmp', run: 'if test -e /tmp/mark; then echo "/tmp survived a step"; exit 1; fi' },
      { name: 'read-only', run: 'for p in /x /etc/x /usr/x /opt/old/b.txt; do if (echo x > $p) 2>/dev/null; then echo "wrote $p"; exit 1; fi; done; echo var > /var/tmp/ok' }
    ]
    const first = await runJob(executor, teardown, workRoot, { source: await source(teardown, { 'in.txt': 'hello' }), steps, artifacts: ['out.txt'], rootfs: { path: lease.root, os: info.os } })
    expect(first.status, first.log.toString()).toBe('pass')
    expect(first.log.toString()).toContain('system: PRETTY_NAME="Tiny Test OS 1"')
    expect(first.env.os).toBe('Tiny Test OS 1')
    expect(first.env.tools).toEqual({})
    expect(first.artifacts.map((a) => a.path)).toEqual(['out.txt'])

    // A second build sees none of the first's files, and the environment on disk is as it was.
    const second = await runJob(executor, teardown, workRoot, {
      steps: [{ name: 'look', run: 'for p in /build/out.txt /build/in.txt /tmp/mark /var/tmp/ok; do if test -e $p; then echo "found $p"; exit 1; fi; done' }],
      rootfs: { path: lease.root, os: info.os }
    })
    expect(second.status, second.log.toString()).toBe('pass')
    expect(await treeListing(lease.root)).toEqual(before)
  })

  it('keeps the cache within its bound by least recent use, never removing an environment in use', async () => {
    const dir = await tempDir(teardown, 'buildhaus-envs-')
    const lru = await EnvironmentStore.open({ dir, maxBytes: 1024 * 1024 * 1024 })
    // Three environments with different manifests (the image's date differs).
    const made = []
    for (const [i, name] of ['old-1', 'mid-1', 'new-1'].entries()) {
      const file = join(await tempDir(teardown), 'image.tar')
      await writeOciArchive(file, [{ entries: BASE_LAYER }], { created: `2026-12-0${i + 1}T00:00:00Z` })
      made.push(await lru.import(name, file))
    }
    // old-1 is in use: gc passes it by, and takes mid-1, then new-1 if it must.
    const inUse = await lru.acquire({ name: 'old-1' })
    teardown(async () => { await inUse.release() })
    const size = made[0]!.sizeBytes
    const { removed } = await lru.gc(size * 2 + 1)
    expect(removed.map((e) => e.name)).toEqual(['mid-1'])
    await expect(lru.remove('old-1')).rejects.toMatchObject({ name: 'EnvironmentInUseError' })
    await inUse.release()
    const { removed: more } = await lru.gc(0)
    expect(more.map((e) => e.name).sort()).toEqual(['new-1', 'old-1'])
    expect(await lru.list()).toEqual([])
    await expect(lru.acquire({ name: 'old-1' })).rejects.toMatchObject({ name: 'UnknownEnvironmentError' })
  })

  it('makes an environment once however many ask for it at the same time', async () => {
    const dir = await tempDir(teardown, 'buildhaus-envs-')
    const once = await EnvironmentStore.open({ dir, maxBytes: 1024 * 1024 * 1024 })
    const other = await EnvironmentStore.open({ dir, maxBytes: 1024 * 1024 * 1024 })
    const { file } = await image(await tempDir(teardown))
    let made = 0
    once.on('created', () => { made++ })
    other.on('created', () => { made++ })
    // Five callers in this process share one making; a second store on the same directory (as another process would) waits for the lock and finds it made.
    const results = await Promise.all([...Array.from({ length: 5 }, async () => await once.import('tiny-1', file)), other.import('tiny-1', file)])
    expect(new Set(results.map((r) => r.hash)).size).toBe(1)
    expect(made).toBeLessThanOrEqual(2)
    expect((await once.list()).length).toBe(1)
  })
})

/** Every path under a root with its size and mode: a change anywhere shows. */
async function treeListing (root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name)
      const stats = await lstat(path)
      out.push(`${path.slice(root.length)} ${stats.mode} ${stats.size} ${stats.mtimeMs}`)
      if (stats.isDirectory()) await walk(path)
    }
  }
  await walk(root)
  return out
}

