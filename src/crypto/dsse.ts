import { verifySignature } from './sign.js'

/**
 * DSSE (Dead Simple Signing Envelope, v1): what is signed is the
 * pre-authentication encoding of the payload type and the payload bytes,
 * `"DSSEv1" SP len(type) SP type SP len(payload) SP payload` (lengths in
 * ASCII decimal, of the UTF-8 bytes), so a signature can never be replayed
 * under another type. The envelope carries the payload in base64.
 */

export interface DsseSignature {
  /** Who signed: here, the builder's Ed25519 public key in hex. */
  keyid: string
  /** The signature, base64. */
  sig: string
}

export interface DsseEnvelope {
  payloadType: string
  /** The payload bytes, base64. */
  payload: string
  signatures: DsseSignature[]
}

/** PAE(type, payload): the bytes a DSSE signature covers. */
export function pae (payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8')
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'ascii'),
    type,
    Buffer.from(` ${payload.length} `, 'ascii'),
    payload
  ])
}

/** Whether `signatureHex` is `keyHex`'s Ed25519 signature of PAE(type, payload). */
export function verifyDsse (payloadType: string, payload: Uint8Array, keyHex: string, signatureHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(signatureHex)) return false
  return verifySignature(keyHex, pae(payloadType, payload), Buffer.from(signatureHex, 'hex'))
}
