import { createHash } from 'node:crypto'
import { access, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { defaultDebianArchive } from '../../src/node/cli/upstream-defaults.js'
import { AddressPolicy, upstreamOf } from '../../src/upstream/index.js'
import { checkInRelease, DEBIAN_KEYRING } from '../../src/upstream/sources/gpgv.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

/**
 * A Debian source watch against Debian's real archive (the one this
 * machine's apt sources name), where the machine reaches it: InRelease
 * (signature checked with gpgv and the archive keyring when installed) →
 * Sources.gz → the .dsc → every file it names, each checked by sha256.
 */
describe('Debian source packages from the archive', () => {
  const teardown = useTeardown()
  let archive: string | undefined
  let unreachable = ''

  beforeAll(async () => {
    try {
      archive = await defaultDebianArchive('bookworm')
      const answer = await fetch(`${archive.replace(/\/+$/, '')}/dists/bookworm/InRelease`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })
      if (!answer.ok) unreachable = `the archive answered HTTP ${answer.status}`
    } catch (err) {
      unreachable = `the Debian archive is not reachable from this machine (${(err as Error).message})`
    }
  })

  it('lists hello in bookworm and fetches its .dsc and files, every checksum checked', async (context) => {
    if (unreachable !== '' || archive === undefined) context.skip(unreachable)
    const upstream = await upstreamOf({ kind: 'debian', source: archive!, package: 'hello', suite: 'bookworm', interval: 3600, job: undefined as never }, new AddressPolicy())
    const signal = AbortSignal.timeout(120_000)
    const releases = await upstream.list(signal)
    expect(releases.length).toBeGreaterThan(0)
    const release = releases.at(-1)!.release
    const fetched = await upstream.fetch(release, await tempDir(teardown), signal)
    const files = (await readdir(fetched.dir)).sort()
    const dsc = files.find((f) => f.endsWith('.dsc'))!
    expect(dsc).toMatch(/^hello_.*\.dsc$/)
    expect(files.some((f) => f.includes('.orig.tar') || f.endsWith('.tar.gz') || f.endsWith('.tar.xz'))).toBe(true)
    expect(fetched.upstream.url.endsWith(`/${dsc}`)).toBe(true)
    expect(fetched.upstream.digest).toEqual({ sha256: createHash('sha256').update(await readFile(join(fetched.dir, dsc))).digest('hex') })
  }, 180_000)

  it('takes the archive\'s real InRelease and refuses it changed by one word (gpgv in its sandbox, the archive keyring)', async (context) => {
    if (unreachable !== '' || archive === undefined) context.skip(unreachable)
    const gpgv = await access('/usr/bin/gpgv').then(() => true, () => false)
    const keyring = await access(DEBIAN_KEYRING).then(() => true, () => false)
    if (!gpgv || !keyring) context.skip('gpgv or the Debian archive keyring is not installed')
    const answer = await fetch(`${archive!.replace(/\/+$/, '')}/dists/bookworm/InRelease`, { signal: AbortSignal.timeout(30_000) })
    const signed = Buffer.from(await answer.arrayBuffer())
    await checkInRelease(signed, DEBIAN_KEYRING, AbortSignal.timeout(60_000))
    const changed = Buffer.from(signed.toString('utf8').replace('Codename: bookworm', 'Codename: bookwurm'))
    expect(changed.equals(signed)).toBe(false)
    await expect(checkInRelease(changed, DEBIAN_KEYRING, AbortSignal.timeout(60_000))).rejects.toMatchObject({ name: 'UpstreamError', message: expect.stringMatching(/InRelease signature does not verify .*BAD signature/) })
  }, 120_000)
})
