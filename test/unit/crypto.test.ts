import { execFileSync } from 'node:child_process'
import { stat, writeFile, chmod, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createKeyFile, loadKeyFile } from '../../src/crypto/key-file.js'
import { encodePublicKeyPem, generateNodeKey, parsePublicKey } from '../../src/crypto/keys.js'
import { authorOfPeerId, libp2pPrivateKey, peerIdOfAuthor } from '../../src/crypto/peer-id.js'
import { createSigner, verifySignature, verifySignatureNacl } from '../../src/crypto/sign.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()

describe('signing', () => {
  it('tweetnacl and node:crypto produce the same signatures and verify each other', () => {
    for (let i = 0; i < 20; i++) {
      const key = generateNodeKey()
      const message = Buffer.from(`message ${i} ${'x'.repeat(i * 37)}`)
      const nacl = createSigner(key, 'nacl').sign(message)
      const native = createSigner(key, 'native').sign(message)
      expect(Buffer.from(native).equals(Buffer.from(nacl))).toBe(true)
      expect(verifySignature(key.publicHex, message, nacl)).toBe(true)
      expect(verifySignatureNacl(key.publicKey, message, native)).toBe(true)
    }
  })

  it('rejects a signature over other bytes, by another key, or malformed', () => {
    const key = generateNodeKey()
    const other = generateNodeKey()
    const sig = createSigner(key).sign(Buffer.from('a'))
    expect(verifySignature(key.publicHex, Buffer.from('b'), sig)).toBe(false)
    expect(verifySignature(other.publicHex, Buffer.from('a'), sig)).toBe(false)
    expect(verifySignatureNacl(other.publicKey, Buffer.from('a'), sig)).toBe(false)
    expect(verifySignature(key.publicHex, Buffer.from('a'), sig.subarray(1))).toBe(false)
    expect(verifySignature('zz', Buffer.from('a'), sig)).toBe(false)
  })
})

describe('key file', () => {
  it('is PKCS#8 PEM with mode 0600, readable by OpenSSL, and never overwritten', async () => {
    const dir = await tempDir(teardown)
    const path = join(dir, 'key.pem')
    const key = await createKeyFile(path)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const pem = await readFile(path, 'utf8')
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    const openssl = execFileSync('openssl', ['pkey', '-in', path, '-pubout'], { encoding: 'utf8' })
    expect(parsePublicKey(openssl)).toBe(key.publicHex)
    expect((await loadKeyFile(path)).publicHex).toBe(key.publicHex)
    await expect(createKeyFile(path)).rejects.toMatchObject({ name: 'KeyExistsError' })
    expect(await readFile(path, 'utf8')).toBe(pem)
  })

  it('refuses a key file others can read, a missing one, and garbage, saying what to do', async () => {
    const dir = await tempDir(teardown)
    const path = join(dir, 'key.pem')
    await createKeyFile(path)
    await chmod(path, 0o644)
    await expect(loadKeyFile(path)).rejects.toThrow(/chmod 600/)
    await expect(loadKeyFile(join(dir, 'missing.pem'))).rejects.toThrow(/buildhaus-node init/)
    const junk = join(dir, 'junk.pem')
    await writeFile(junk, 'hello', { mode: 0o600 })
    await expect(loadKeyFile(junk)).rejects.toMatchObject({ name: 'KeyFileError' })
  })
})

describe('names of a key', () => {
  it('maps an author key to its libp2p peer id and back', async () => {
    const key = generateNodeKey()
    const privateKey = await libp2pPrivateKey(key)
    const peerId = peerIdOfAuthor(key.publicHex)
    expect(peerId.equals(peerIdOfAuthor(authorOfPeerId(peerId)))).toBe(true)
    expect(Buffer.from(privateKey.publicKey.raw).toString('hex')).toBe(key.publicHex)
    expect(authorOfPeerId(peerId.toString())).toBe(key.publicHex)
  })

  it('reads public keys as PEM or hex', () => {
    const key = generateNodeKey()
    expect(parsePublicKey(encodePublicKeyPem(key.publicKey))).toBe(key.publicHex)
    expect(parsePublicKey(`${key.publicHex}  alice's builder\n`)).toBe(key.publicHex)
    expect(() => parsePublicKey('nope')).toThrow(/64 lower-case hex/)
  })
})
