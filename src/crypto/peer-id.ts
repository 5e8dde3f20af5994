import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { InvalidInputError } from '../util/errors.js'
import { fromHex, toHex } from '../util/hex.js'
import type { NodeKey } from './keys.js'

/**
 * One key, two names: the log names an author by its public key in hex, libp2p
 * names the same key by its peer id. These convert between them.
 */
export async function libp2pPrivateKey (key: NodeKey): Promise<PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', key.seed)
}

export function peerIdOfAuthor (authorHex: string): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(fromHex(authorHex)))
}

export function authorOfPeerId (peerId: PeerId | string): string {
  const id = typeof peerId === 'string' ? peerIdFromString(peerId) : peerId
  if (id.type !== 'Ed25519' || id.publicKey === undefined) {
    throw new InvalidInputError(`peer ${id.toString()} does not use an Ed25519 key`)
  }
  return toHex(id.publicKey.raw)
}
