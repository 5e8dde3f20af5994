import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import type { ConnectionGater, PeerId, PrivateKey } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'

type Teardown = (fn: () => unknown) => void

/** An in-process buildhaus libp2p node on a loopback port, stopped at teardown. */
export async function meshPeer (teardown: Teardown, options: { privateKey?: PrivateKey, port?: number, topics?: string[], gater?: ConnectionGater } = {}): Promise<MeshLibp2p> {
  const node = await createMeshLibp2p({
    privateKey: options.privateKey ?? await generateKeyPair('Ed25519'),
    listen: [`/ip4/127.0.0.1/tcp/${options.port ?? 0}`],
    ...(options.topics !== undefined ? { topics: options.topics } : {}),
    ...(options.gater !== undefined ? { gater: options.gater } : {})
  })
  teardown(async () => { await node.stop() })
  return node
}

/**
 * A libp2p peer speaking gossipsub with StrictNoSign: it sends unsigned
 * messages, which a buildhaus node must refuse. The same stack otherwise.
 */
export async function unsignedGossipPeer (teardown: Teardown): Promise<Libp2p<{ pubsub: GossipSub }>> {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', allowPublishToZeroTopicPeers: true, fallbackToFloodsub: false })
    }
  })
  teardown(async () => { await node.stop() })
  return node
}

export interface WireMessage {
  /** The claimed origin (`from`, a peer id's multihash) in hex, if the message carries one. */
  from?: string
  topic: string
  data: string
  signed: boolean
}

/**
 * Record every message that arrives at this gossipsub instance from the wire,
 * before any validation: proof of what a peer was sent, not only of what it
 * accepted. Observes gossipsub's RPC handler; calls it unchanged.
 */
export function observeWire (pubsub: GossipSub): WireMessage[] {
  const seen: WireMessage[] = []
  const target = pubsub as unknown as { handleReceivedRpc: (from: unknown, rpc: { messages?: Array<{ from?: Uint8Array, topic?: string, data?: Uint8Array, signature?: Uint8Array }> }) => Promise<void> }
  if (typeof target.handleReceivedRpc !== 'function') throw new Error('this gossipsub has no handleReceivedRpc to observe; update observeWire for the new version')
  const original = target.handleReceivedRpc.bind(pubsub)
  target.handleReceivedRpc = async (from, rpc) => {
    for (const message of rpc.messages ?? []) {
      const origin = message.from !== undefined ? Buffer.from(message.from).toString('hex') : undefined
      seen.push({
        ...(origin !== undefined ? { from: origin } : {}),
        topic: message.topic ?? '',
        data: Buffer.from(message.data ?? new Uint8Array()).toString('utf8'),
        signed: message.signature !== undefined && message.signature.length > 0
      })
    }
    await original(from, rpc)
  }
  return seen
}

/** A peer id as it appears in a message's `from` field, in hex (compare with WireMessage.from). */
export function wireIdOf (peerId: PeerId): string {
  return Buffer.from(peerId.toMultihash().bytes).toString('hex')
}
