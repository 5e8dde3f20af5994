import { access, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AddressPolicy } from '../../src/upstream/guard.js'
import { debianUpstream } from '../../src/upstream/sources/debian.js'
import { DEBIAN_KEYRING } from '../../src/upstream/sources/gpgv.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { unsignedArchive } from '../helpers/unsigned-archive.js'

const teardown = useTeardown()

describe('the InRelease signature check', () => {
  it('refuses the release when gpgv is there but cannot start, instead of skipping the check', async () => {
    // A gpgv on PATH that is not executable: starting it fails with EACCES, not "not installed".
    const bin = await tempDir(teardown, 'buildhaus-bin-')
    await writeFile(join(bin, 'gpgv'), '#!/bin/sh\nexit 0\n', { mode: 0o644 })
    const before = process.env.PATH
    process.env.PATH = `${bin}${delimiter}/nonexistent`
    teardown(() => { process.env.PATH = before })
    const upstream = debianUpstream(await unsignedArchive(teardown), 'bookworm', 'hello', new AddressPolicy(['127.0.0.1']))
    await expect(upstream.list(AbortSignal.timeout(30_000))).rejects.toMatchObject({ name: 'UpstreamError', message: expect.stringMatching(/gpgv did not start/) })
  })

  it('refuses the release with a sentence, not a stack, when there is nowhere to put the InRelease for gpgv', async (context) => {
    // The file goes to the temporary directory before gpgv's sandbox reads it; here that directory is gone.
    const bin = await tempDir(teardown, 'buildhaus-bin-')
    await writeFile(join(bin, 'gpgv'), '#!/bin/sh\nexit 0\n', { mode: 0o755 })
    const before = { PATH: process.env.PATH, TMPDIR: process.env.TMPDIR }
    process.env.PATH = `${bin}${delimiter}${before.PATH ?? ''}`
    process.env.TMPDIR = join(bin, 'no-such-dir')
    teardown(() => {
      process.env.PATH = before.PATH
      if (before.TMPDIR === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = before.TMPDIR
    })
    if (!await access(DEBIAN_KEYRING).then(() => true, () => false)) context.skip('the Debian archive keyring is not installed, so gpgv is never asked')
    const upstream = debianUpstream(await unsignedArchive(teardown), 'bookworm', 'hello', new AddressPolicy(['127.0.0.1']))
    await expect(upstream.list(AbortSignal.timeout(30_000))).rejects.toMatchObject({ name: 'UpstreamError', message: expect.stringMatching(/^cannot check the archive's InRelease signature: no room for it in .*no-such-dir/) })
  })
})
