import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { ArchiveUnreachableError, EnvironmentStore, packageVersions, type EnvironmentLease } from '../../src/environments/index.js'
import type { Executor } from '../../src/sandbox/index.js'
import { sharedEnvironmentStore, skipWithoutDebian } from '../helpers/environments.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, runJob, source } from '../sandbox/helpers.js'

/**
 * Debian environments made on this machine with mmdebstrap, from the
 * archive the machine's apt uses, shared with the other test files through
 * the test store (made once per run, or kept from an earlier one).
 */

const skip = await skipWithoutDebian('the Debian environment tests')

describe.skipIf(skip)('a Debian environment made here', () => {
  const teardown = useTeardown()
  let store: EnvironmentStore
  let executor: Executor
  let base: EnvironmentLease

  beforeAll(async () => {
    store = await sharedEnvironmentStore()
    executor = await bubblewrap()
    base = await store.acquire({ name: 'debian-12', create: true, onLine: (line) => { process.stderr.write(`debian-12: ${line}\n`) } })
  }, 20 * 60_000)

  it('is named by the sha256 of a manifest listing every package and the archive it came from', async () => {
    teardown(async () => { await base.release() })
    const bytes = await readFile(join(store.dir, 'envs', base.hash, 'manifest.json'))
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(base.hash)
    expect(base.manifestBytes.equals(bytes)).toBe(true)
    const { manifest } = base
    expect(manifest).toMatchObject({ v: 1, name: 'debian-12', origin: 'Debian', suite: 'bookworm', architecture: 'amd64' })
    expect(manifest.date).toMatch(/\d{4} \d\d:\d\d:\d\d UTC$/)
    const versions = packageVersions(manifest)
    for (const name of ['dpkg', 'apt', 'libc6', 'base-files']) expect(versions.get(name), name).toMatch(/^\S+$/)
    expect(manifest.packages.every((p) => /^\S+ \(= \S+\)$/.test(p))).toBe(true)
    expect(base.os).toBe('Debian GNU/Linux 12 (bookworm)')
    // A volunteer reads it back as a .buildinfo would list it.
    expect(manifest.packages).toContain(`dpkg (= ${versions.get('dpkg')!})`)
  })

  it('runs a step that needs dpkg\'s database (which the host slice lacks), as the build user, without network', async () => {
    const hold = await store.acquire({ name: 'debian-12' })
    teardown(async () => { await hold.release() })
    const outcome = await runJob(executor, teardown, await tempDir(teardown), {
      source: await source(teardown, { 'x.txt': 'x' }),
      steps: [{ name: 'dpkg', run: 'dpkg-query -W -f \'${Version}\\n\' dpkg > version.txt && id -u && (getent hosts deb.debian.org >/dev/null && echo NETWORK || echo no network)' }],
      artifacts: ['version.txt'],
      rootfs: { path: hold.root, os: hold.os }
    })
    expect(outcome.status, outcome.log.toString()).toBe('pass')
    expect(outcome.log.toString()).toMatch(/^1000$/m)
    expect(outcome.log.toString()).toContain('no network')
    expect(outcome.env.os).toBe('Debian GNU/Linux 12 (bookworm)')
    expect((await readFile(outcome.artifacts[0]!.file, 'utf8')).trim()).toBe(packageVersions(hold.manifest).get('dpkg'))
  })

  it('refuses packages the archive does not have, naming them, and keeps nothing of the attempt', async () => {
    // The store is shared with test files running beside this one, which may add environments meanwhile:
    // what counts is that nothing of this attempt is listed and nothing held before went.
    const before = (await store.list()).map((info) => info.hash)
    const err = await store.acquire({ name: 'debian-12', packages: ['buildhaus-no-such-package', 'hello'] }).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'UnknownPackagesError', packages: ['buildhaus-no-such-package'] })
    expect((err as Error).message).toContain('buildhaus-no-such-package')
    const after = await store.list()
    expect(after.filter((info) => info.requested.includes('buildhaus-no-such-package'))).toEqual([])
    expect(after.map((info) => info.hash)).toEqual(expect.arrayContaining(before))
    // Asked again (by this or any node sharing the store), the same set is refused from memory, saying when the archive said so.
    const again = await store.acquire({ name: 'debian-12', packages: ['hello', 'buildhaus-no-such-package'] }).catch((e: unknown) => e)
    expect(again).toMatchObject({ name: 'UnknownPackagesError', packages: ['buildhaus-no-such-package'] })
    expect((again as Error).message).toMatch(/as debian-12's archive said \d+ min ago/)
  }, 10 * 60_000)
})

describe.skipIf(skip)('an archive that does not answer', () => {
  const teardown = useTeardown()

  it('is an ArchiveUnreachableError that says so, and leaves no half-made environment', async () => {
    const dir = await tempDir(teardown, 'buildhaus-envs-')
    // A port nothing listens on: refused at once.
    const store = await EnvironmentStore.open({ dir, maxBytes: 1024 * 1024 * 1024, mirror: 'http://127.0.0.1:9/debian' })
    const err = await store.create('debian-12').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ArchiveUnreachableError)
    expect((err as Error).message).toMatch(/unreachable/)
    expect(await store.list()).toEqual([])
    await expect(stat(join(dir, 'names', 'debian-12.json'))).rejects.toThrow()
  }, 5 * 60_000)
})
