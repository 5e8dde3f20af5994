import { sign as nativeSign, verify as nativeVerify, type KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'
import { isHex } from '../util/hex.js'
import { privateKeyObject, publicKeyObject, type NodeKey } from './keys.js'
import { isStrictPublicKey, isStrictSignature } from './strict.js'

/** What signs: the node's own key, behind a narrow interface. */
export interface Signer {
  readonly publicKey: Uint8Array
  readonly publicHex: string
  sign (message: Uint8Array): Uint8Array
}

export type SignerImplementation = 'native' | 'nacl'

/**
 * A signer over `key`. Both implementations produce identical bytes (Ed25519 is
 * deterministic, RFC 8032); `native` (OpenSSL via node:crypto) is the default
 * because it is two orders of magnitude faster than tweetnacl, the reference.
 */
export function createSigner (key: NodeKey, implementation: SignerImplementation = 'native'): Signer {
  if (implementation === 'nacl') {
    const secretKey = nacl.sign.keyPair.fromSeed(key.seed).secretKey
    return {
      publicKey: key.publicKey,
      publicHex: key.publicHex,
      sign: (message) => nacl.sign.detached(message, secretKey)
    }
  }
  const keyObject = privateKeyObject(key)
  return {
    publicKey: key.publicKey,
    publicHex: key.publicHex,
    sign: (message) => new Uint8Array(nativeSign(null, message, keyObject))
  }
}

/** Parsing a public key costs about as much as a verification: keep recent ones. */
const KEY_CACHE_LIMIT = 4096
const keyCache = new Map<string, KeyObject>()

function cachedPublicKey (publicHex: string): KeyObject {
  let keyObject = keyCache.get(publicHex)
  if (keyObject === undefined) {
    keyObject = publicKeyObject(publicHex)
    if (keyCache.size >= KEY_CACHE_LIMIT) {
      const oldest = keyCache.keys().next().value
      if (oldest !== undefined) keyCache.delete(oldest)
    }
    keyCache.set(publicHex, keyObject)
  }
  return keyObject
}

/**
 * Verify with node:crypto (the hot path), strictly: the key and the
 * signature must first pass the encoding and order checks of strict.ts
 * (what libsodium refuses and OpenSSL does not). Never throws: malformed keys
 * or signatures are simply invalid.
 */
export function verifySignature (publicHex: string, message: Uint8Array, signature: Uint8Array): boolean {
  if (!isHex(publicHex, 32) || !isStrictEncoding(Buffer.from(publicHex, 'hex'), signature)) return false
  try {
    return nativeVerify(null, message, cachedPublicKey(publicHex), signature)
  } catch {
    return false
  }
}

/** Verify with tweetnacl, the reference implementation (slow; used to cross-check), with the same strict checks in front. */
export function verifySignatureNacl (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!isStrictEncoding(publicKey, signature)) return false
  return nacl.sign.detached.verify(message, signature, publicKey)
}

/**
 * The checks strict verification makes before any curve arithmetic (see
 * strict.ts): a canonical public key not of small order, and a signature whose
 * R is canonical and not of small order and whose S is below the group order.
 * Cheap (a few byte comparisons); every verify path calls it first.
 */
export function isStrictEncoding (publicKey: Uint8Array, signature: Uint8Array): boolean {
  return isStrictPublicKey(publicKey) && isStrictSignature(signature)
}
