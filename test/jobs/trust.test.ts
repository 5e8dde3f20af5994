import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodePublicKeyPem, generateNodeKey } from '../../src/crypto/keys.js'
import { isTrusted, loadTrustDir } from '../../src/jobs/trust.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

describe('trust lists', () => {
  const teardown = useTeardown()

  it('reads NAME.pub.pem and NAME.pub files, skipping dotfiles and notes', async () => {
    const dir = await tempDir(teardown)
    const alice = generateNodeKey()
    const bob = generateNodeKey()
    await writeFile(join(dir, 'alice.pub.pem'), encodePublicKeyPem(alice.publicKey))
    await writeFile(join(dir, 'bob.pub'), `${bob.publicHex} bob's build box in Tübingen\n`)
    await writeFile(join(dir, '.gitkeep'), '')
    await writeFile(join(dir, 'README.md'), '# who these are')
    const list = await loadTrustDir(dir)
    expect([...list.keys].sort()).toEqual([alice.publicHex, bob.publicHex].sort())
    expect(list.names.get(alice.publicHex)).toBe('alice')
    expect(list.names.get(bob.publicHex)).toBe('bob')
    const policy = { trusted: list.keys }
    expect(isTrusted(policy, alice.publicHex)).toBe(true)
    expect(isTrusted(policy, generateNodeKey().publicHex)).toBe(false)
    expect(isTrusted({ ...policy, excluded: new Set([alice.publicHex]) }, alice.publicHex)).toBe(false)
    expect(isTrusted({}, generateNodeKey().publicHex)).toBe(true)
  })

  it('names the bad file and what is wrong', async () => {
    const dir = await tempDir(teardown)
    await expect(loadTrustDir(join(dir, 'missing'))).rejects.toThrow(/^cannot read the trust directory .*missing/)
    await expect(loadTrustDir(dir)).rejects.toThrow(/holds no keys: add NAME\.pub\.pem or NAME\.pub files/)

    await writeFile(join(dir, 'carol.pub'), 'not a key\n')
    await expect(loadTrustDir(dir)).rejects.toMatchObject({ name: 'TrustListError', message: `${join(dir, 'carol.pub')}: expected an Ed25519 public key as PEM or as 64 lower-case hex digits` })
    await writeFile(join(dir, 'carol.pub'), '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')
    await expect(loadTrustDir(dir)).rejects.toThrow(`${join(dir, 'carol.pub')}: not a PEM public key`)
    await writeFile(join(dir, 'carol.pub'), generateNodeKey().publicHex)

    await writeFile(join(dir, 'dave.pem'), 'secret?')
    await expect(loadTrustDir(dir)).rejects.toThrow(`${join(dir, 'dave.pem')} is not a public key file: name trusted keys NAME.pub.pem (SPKI PEM) or NAME.pub (hex)`)
  })

  it('refuses a directory posing as a key file', async () => {
    const dir = await tempDir(teardown)
    await mkdir(join(dir, 'eve.pub'))
    await expect(loadTrustDir(dir)).rejects.toThrow(/eve\.pub is not a regular file/)
  })
})
