import { writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AddressPolicy } from '../../src/upstream/guard.js'
import { debianUpstream } from '../../src/upstream/sources/debian.js'
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
})
