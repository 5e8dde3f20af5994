import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'
import { InvalidInputError } from '../util/errors.js'
import { fromHex, isHex, toHex } from '../util/hex.js'
import { publicKeyProblem } from './strict.js'

/** An Ed25519 key pair. `seed` is the 32-byte secret from which everything else derives. */
export interface NodeKey {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  /** The public key as 64 lower-case hex digits: how an author is named in the log. */
  readonly publicHex: string
}

/** DER prefix of a PKCS#8 Ed25519 private key (RFC 8410); the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** DER prefix of an SPKI Ed25519 public key (RFC 8410); the 32-byte key follows. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** A fresh key from tweetnacl, the reference implementation (its randomness is node:crypto's). */
export function generateNodeKey (): NodeKey {
  return nodeKeyFromSeed(nacl.randomBytes(32))
}

export function nodeKeyFromSeed (seed: Uint8Array): NodeKey {
  if (seed.length !== 32) throw new InvalidInputError(`an Ed25519 seed is 32 bytes, got ${seed.length}`)
  const pair = nacl.sign.keyPair.fromSeed(seed)
  return { seed: Uint8Array.from(seed), publicKey: pair.publicKey, publicHex: toHex(pair.publicKey) }
}

/** PKCS#8 PEM ("BEGIN PRIVATE KEY"), readable by `openssl pkey`. */
export function encodePrivateKeyPem (key: NodeKey): string {
  const der = Buffer.concat([PKCS8_ED25519_PREFIX, key.seed])
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString()
}

/** Parse a PKCS#8 PEM private key; anything but Ed25519 is refused. */
export function decodePrivateKeyPem (pem: string): NodeKey {
  let keyObject: KeyObject
  try {
    keyObject = createPrivateKey({ key: pem, format: 'pem' })
  } catch {
    throw new InvalidInputError('not a PEM private key (expected "-----BEGIN PRIVATE KEY-----", PKCS#8)')
  }
  if (keyObject.asymmetricKeyType !== 'ed25519') {
    throw new InvalidInputError(`the key is ${keyObject.asymmetricKeyType ?? 'of an unknown type'}, buildhaus needs Ed25519`)
  }
  const der = keyObject.export({ format: 'der', type: 'pkcs8' })
  return nodeKeyFromSeed(new Uint8Array(der.subarray(der.length - 32)))
}

/** SPKI PEM ("BEGIN PUBLIC KEY") of a public key: the format of trust lists in keys/. */
export function encodePublicKeyPem (publicKey: Uint8Array): string {
  const der = Buffer.concat([SPKI_ED25519_PREFIX, publicKey])
  return createPublicKey({ key: der, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString()
}

/**
 * Read a public key written either as SPKI PEM or as 64 hex digits (optionally
 * followed by a comment). Returns the key as hex. A key no signature could
 * honestly verify under (non-canonical, or a point of small order: see
 * strict.ts) is refused, so it can never enter a trust list.
 */
export function parsePublicKey (text: string): string {
  const hex = parsePublicKeyText(text)
  const problem = publicKeyProblem(fromHex(hex))
  if (problem !== undefined) throw new InvalidInputError(`${problem}; it cannot be anyone's key`)
  return hex
}

function parsePublicKeyText (text: string): string {
  const trimmed = text.trim()
  if (trimmed.startsWith('-----BEGIN')) {
    let keyObject: KeyObject
    try {
      keyObject = createPublicKey({ key: trimmed, format: 'pem' })
    } catch {
      throw new InvalidInputError('not a PEM public key (expected "-----BEGIN PUBLIC KEY-----")')
    }
    if (keyObject.asymmetricKeyType !== 'ed25519') throw new InvalidInputError('the public key is not Ed25519')
    const der = keyObject.export({ format: 'der', type: 'spki' })
    return toHex(new Uint8Array(der.subarray(der.length - 32)))
  }
  const first = trimmed.split(/\s+/)[0] ?? ''
  if (!isHex(first, 32)) throw new InvalidInputError('expected an Ed25519 public key as PEM or as 64 lower-case hex digits')
  return first
}

/** The native (OpenSSL) key object for a public key, for fast verification. */
export function publicKeyObject (publicKey: Uint8Array | string): KeyObject {
  const raw = typeof publicKey === 'string' ? fromHex(publicKey) : publicKey
  if (raw.length !== 32) throw new InvalidInputError(`an Ed25519 public key is 32 bytes, got ${raw.length}`)
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' })
}

/** The native key object for a private key. */
export function privateKeyObject (key: NodeKey): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, key.seed]), format: 'der', type: 'pkcs8' })
}
