import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { defaultDebianArchive } from '../../src/node/cli/upstream-defaults.js'
import { AddressPolicy, upstreamOf } from '../../src/upstream/index.js'
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
})
