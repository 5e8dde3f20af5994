import { execFileSync } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { peerIdOfAuthor } from '../../src/crypto/peer-id.js'
import { runCli } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

describe('buildhaus-node init', () => {
  const teardown = useTeardown()

  it('makes a 0600 PKCS#8 key and a 0600 token in $BUILDHAUS_HOME, and prints the peer id of that key', async () => {
    const home = join(await tempDir(teardown), 'fresh', 'home')
    const result = await runCli(['init'], { env: { ...process.env, BUILDHAUS_HOME: home } })
    expect(result.code, result.stderr).toBe(0)

    const keyFile = join(home, 'key.pem')
    expect((await stat(home)).mode & 0o777).toBe(0o700)
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600)
    expect((await stat(join(home, 'api-token'))).mode & 0o777).toBe(0o600)
    expect(await readFile(keyFile, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/)
    expect((await readFile(join(home, 'api-token'), 'utf8')).trim()).toMatch(/^[0-9a-f]{64}$/)

    const author = /author:\s+([0-9a-f]{64})/.exec(result.stdout)?.[1]
    const peerId = /peer id:\s+(12D3KooW\S+)/.exec(result.stdout)?.[1]
    expect(author).toBeDefined()
    // One key, two names: the printed peer id is derived from the printed author key.
    expect(peerIdOfAuthor(author!).toString()).toBe(peerId)
    // And OpenSSL reads the same public key from the file.
    const spki = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER'])
    expect(spki.subarray(spki.length - 32).toString('hex')).toBe(author)
  })

  it('--json prints the same facts for scripts', async () => {
    const home = join(await tempDir(teardown), 'home')
    const result = await runCli(['init', '--home', home, '--json'])
    expect(result.code, result.stderr).toBe(0)
    const printed = JSON.parse(result.stdout) as { home: string, peerId: string, author: string, keyFile: string, tokenFile: string }
    expect(printed).toMatchObject({ home, keyFile: join(home, 'key.pem'), tokenFile: join(home, 'api-token') })
    expect(peerIdOfAuthor(printed.author).toString()).toBe(printed.peerId)
  })
})
