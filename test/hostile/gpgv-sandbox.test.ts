import { access, chmod, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { AddressPolicy } from '../../src/upstream/guard.js'
import { debianUpstream } from '../../src/upstream/sources/debian.js'
import { DEBIAN_KEYRING } from '../../src/upstream/sources/gpgv.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { unsignedArchive } from '../helpers/unsigned-archive.js'

/**
 * gpgv parses the InRelease of whatever archive a watch names: a stranger's
 * OpenPGP packets. It runs in the tool sandbox, so a gpgv taken over by
 * crafted packets (it takes a bug in gpgv) reads nothing of the node's and
 * writes nothing on the host. A stand-in gpgv plays the taken-over one: it
 * tries both and says what it managed as its last line, which the refusal
 * quotes.
 */

const teardown = useTeardown()
const skip = await access(DEBIAN_KEYRING).then(() => false, () => true)

describe.skipIf(skip)('gpgv on a stranger\'s InRelease', () => {
  it('runs in a sandbox: it cannot read the node\'s files, write the host\'s or see its environment', async () => {
    const home = await tempDir(teardown, 'buildhaus-home-')
    const secret = join(home, 'node.key')
    await writeFile(secret, 'the node key\n', { mode: 0o600 })
    const marker = join(home, 'gpgv-was-here')
    const bin = await tempDir(teardown, 'buildhaus-bin-')
    await writeFile(join(bin, 'gpgv'), [
      '#!/bin/sh',
      `read=$(cat '${secret}' 2>/dev/null || echo nothing)`,
      `touch '${marker}' 2>/dev/null && wrote=yes || wrote=no`,
      'echo "read: $read; wrote: $wrote; token: ${BUILDHAUS_API_TOKEN:-none}" >&2',
      'exit 1',
      ''
    ].join('\n'))
    await chmod(join(bin, 'gpgv'), 0o755)
    const before = { PATH: process.env.PATH, BUILDHAUS_API_TOKEN: process.env.BUILDHAUS_API_TOKEN }
    process.env.PATH = `${bin}${delimiter}${before.PATH ?? ''}`
    process.env.BUILDHAUS_API_TOKEN = 'secret-token'
    teardown(() => {
      process.env.PATH = before.PATH
      if (before.BUILDHAUS_API_TOKEN === undefined) delete process.env.BUILDHAUS_API_TOKEN
      else process.env.BUILDHAUS_API_TOKEN = before.BUILDHAUS_API_TOKEN
    })

    const upstream = debianUpstream(await unsignedArchive(teardown), 'bookworm', 'hello', new AddressPolicy(['127.0.0.1']))

    const refused = await upstream.list(AbortSignal.timeout(30_000)).then(() => undefined, (err: unknown) => err as Error)
    expect(refused).toMatchObject({ name: 'UpstreamError' })
    expect(refused!.message).toMatch(/InRelease signature does not verify with .*: read: nothing; wrote: no; token: none$/)
    await expect(access(marker)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
