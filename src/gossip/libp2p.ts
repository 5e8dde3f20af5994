import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import type { TopicScoreParams } from '@libp2p/gossipsub/score'
import { identify, type Identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import { UsageError } from '../util/errors.js'
import {
  DIAL_TIMEOUT_MS, GOSSIP_MESH, IDONTWANT_MIN_BYTES, INVALID_MESSAGE_DECAY, INVALID_MESSAGE_WEIGHT, IP_COLOCATION_THRESHOLD, MAX_GOSSIP_MESSAGE_BYTES, PING_INTERVAL_MS
} from './constants.js'
import { PortInUseError } from './errors.js'
import { sendWindowUpdatesAtHalfWindow } from './yamux-window.js'
import { natConfig, type NatOptions, type NatServices } from './nat/services.js'

// A type alias, not an interface: libp2p's ServiceMap needs an index signature.
export type MeshServices = {
  identify: Identify
  pubsub: GossipSub
} & NatServices

export type MeshLibp2p = Libp2p<MeshServices>

export interface MeshNodeOptions {
  privateKey: PrivateKey
  /** Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/4710`. */
  listen: string[]
  /** Multiaddrs (with `/p2p/<peer id>`) of peers to join through. */
  bootstrap?: string[]
  /** Discover peers on the local network by multicast DNS. */
  mdns?: boolean
  /** Gossip topics this node accepts; messages on any other topic are dropped unread. Each is scored (see topicScoring). */
  topics?: string[]
  /** NAT traversal (relay, hole punching, AutoNAT, UPnP). Absent: a plain TCP node, as in-process tests use. */
  nat?: NatOptions
  /** Addresses to announce besides the ones libp2p finds (e.g. a router's public address with a forwarded port). */
  announce?: string[]
  /** A private mesh's pre-shared key (the checked bytes of a swarm key file): only nodes holding it can connect. */
  swarmKey?: Uint8Array
  /**
   * Decides which connections, dials, reservations and relayed connections
   * are allowed. A node's is the nat gater with its address book's
   * `denyDialMultiaddr` (only addresses seen on a real connection,
   * introduced by a trusted peer, or configured may be dialed).
   */
  gater?: ConnectionGater
}

/** Check a multiaddr string up front, so a typo is one clear sentence rather than a stack trace. */
export function parseMultiaddrOption (value: string, option: string): string {
  try {
    multiaddr(value)
  } catch (err) {
    throw new UsageError(`${option} ${value} is not a valid multiaddr (${(err as Error).message}); write it like /ip4/127.0.0.1/tcp/4710`)
  }
  return value
}

/**
 * A libp2p node with the transport stack every buildhaus node speaks: TCP,
 * Noise, Yamux, identify, and gossipsub with strict signing (so every gossip
 * message is signed by its origin's node key and checked on receipt).
 */
export async function createMeshLibp2p (options: MeshNodeOptions): Promise<MeshLibp2p> {
  sendWindowUpdatesAtHalfWindow()
  options.listen.forEach((addr) => parseMultiaddrOption(addr, '--listen'))
  const bootstrapList = options.bootstrap ?? []
  bootstrapList.forEach((addr) => parseMultiaddrOption(addr, '--bootstrap'))

  const peerDiscovery: Array<ReturnType<typeof bootstrap> | ReturnType<typeof mdns>> = []
  if (bootstrapList.length > 0) peerDiscovery.push(bootstrap({ list: bootstrapList, timeout: 0 }))
  if (options.mdns === true) peerDiscovery.push(mdns({ interval: 2_000 }))

  const announce = options.announce ?? []
  announce.forEach((addr) => parseMultiaddrOption(addr, '--announce'))
  const nat = options.nat !== undefined ? await natConfig(options.nat) : undefined

  try {
    return await createLibp2p({
      privateKey: options.privateKey,
      addresses: { listen: [...options.listen, ...(nat?.listen ?? [])], appendAnnounce: announce },
      transports: [tcp(), ...(nat?.transports ?? [])],
      ...(options.swarmKey !== undefined ? { connectionProtector: preSharedKey({ psk: options.swarmKey }) } : {}),
      ...(options.gater !== undefined ? { connectionGater: options.gater } : {}),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery,
      connectionManager: {
        dialTimeout: DIAL_TIMEOUT_MS,
        maxConnections: 200
      },
      connectionMonitor: { pingInterval: PING_INTERVAL_MS },
      services: {
        identify: identify(),
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictSign',
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          emitSelf: false,
          fallbackToFloodsub: false,
          maxInboundDataLength: MAX_GOSSIP_MESSAGE_BYTES,
          ...GOSSIP_MESH,
          idontwantMinDataSize: IDONTWANT_MIN_BYTES,
          fastMsgIdFn: fastMessageId,
          // Gossipsub's default graylists a node with more than 10 peers from one IP address:
          // with it, one bootstrap node in front of a lab behind NAT (or 30 test nodes on one
          // machine) ignores all of them. Keep the Sybil damping, but for a lab's worth.
          scoreParams: {
            IPColocationFactorThreshold: IP_COLOCATION_THRESHOLD,
            IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']),
            // Without topic parameters gossipsub counts nothing per topic: a peer could
            // send invalid messages forever and stay in everyone's mesh.
            topics: Object.fromEntries((options.topics ?? []).map((topic) => [topic, topicScoring()]))
          },
          ...(options.topics !== undefined ? { allowedTopics: options.topics } : {})
        }),
        ...(nat?.services ?? {})
      }
    }) as MeshLibp2p
  } catch (err) {
    throw translateListenError(err, options.listen)
  }
}

/**
 * How gossipsub scores a peer on one of our topics. Only invalid messages
 * (P4) count against it; a few first deliveries (P2) give honest peers a
 * small cushion. Mesh-delivery rates (P3, P3b) are off: our topics are quiet
 * (a heartbeat every 2 s, entries in bursts), so a silent mesh peer is normal.
 */
export function topicScoring (): TopicScoreParams {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0,
    timeInMeshQuantum: 1_000,
    timeInMeshCap: 3_600,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 10,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 100,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5_000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: INVALID_MESSAGE_WEIGHT,
    invalidMessageDeliveriesDecay: INVALID_MESSAGE_DECAY
  }
}

/**
 * A message arrives once from each mesh peer; without a fast id gossipsub
 * checks the signature of every copy before it notices the duplicate. The id
 * hashes every field of the raw message (sender, sequence number, topic,
 * data and signature), so a forged copy sent first cannot shadow the real one.
 */
function fastMessageId (message: { from?: Uint8Array, seqno?: Uint8Array, topic?: string, data?: Uint8Array, signature?: Uint8Array }): string {
  const hash = createHash('sha256')
  for (const part of [message.from, message.seqno, Buffer.from(message.topic ?? '', 'utf8'), message.data, message.signature]) {
    const bytes = part ?? new Uint8Array()
    const length = Buffer.alloc(4)
    length.writeUInt32BE(bytes.byteLength)
    hash.update(length).update(bytes)
  }
  return hash.digest('base64')
}

/** libp2p reports a taken port as a long multi-line error; say it in one sentence with what to do. */
function translateListenError (err: unknown, listen: string[]): unknown {
  const text = err instanceof Error ? err.message : String(err)
  if (!text.includes('EADDRINUSE')) return err
  const taken = listen.find((addr) => text.includes(`${addr}:`)) ?? listen.join(', ')
  return new PortInUseError(`the p2p address ${taken} is already in use (is another buildhaus-node running?); stop that program or pass --listen with another port`, { cause: err })
}
