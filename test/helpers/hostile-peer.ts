import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { RPC } from '@libp2p/gossipsub/message'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey, type NodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createSigner, type Signer } from '../../src/crypto/sign.js'
import type { PrivateKey } from '@libp2p/interface'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
import type { NatOptions } from '../../src/gossip/nat/index.js'
import { PRESENCE_TOPIC } from '../../src/gossip/presence/constants.js'
import { ENTRY_FORMAT_VERSION } from '../../src/ledger/constants.js'
import { signedMessage } from '../../src/ledger/entry.js'
import { ENTRIES_TOPIC, FORKS_TOPIC } from '../../src/ledger/gossip/constants.js'
import { canonicalJson } from '../../src/util/canonical-json.js'
import { toHex } from '../../src/util/hex.js'
import { waitFor } from '../../src/util/wait.js'

type Teardown = (fn: () => unknown) => void

/** The fields of an entry a forger chooses; `v` and `author` default to the honest ones. */
export interface ForgedFields {
  seq: number
  prev: string | null
  clock: number
  time: number
  type: string
  body: Record<string, unknown>
  v?: number
  author?: string
}

/** A forged entry: its wire line (canonical JSON with `sig`) and its id. */
export interface ForgedEntry {
  id: string
  line: string
  entry: Record<string, unknown>
}

/** One throwaway author key: as many as the attacker likes, for free. */
export interface ThrowawayAuthor {
  key: NodeKey
  signer: Signer
  /** The author's hex public key, as entries name it. */
  hex: string
  /** The next seq and prev of this author's chain, advanced by `next()`. */
  seq: number
  prev: string | null
  /** Sign the next entry of this author's chain (seq/prev filled in), advancing it. */
  next: (fields: Omit<ForgedFields, 'seq' | 'prev'> & Partial<Pick<ForgedFields, 'seq' | 'prev'>>) => ForgedEntry
}

/**
 * Sign an entry exactly as an honest node would (canonical JSON, sha256 id,
 * domain-separated Ed25519), but without any of the codec's checks of the
 * body or the envelope: whatever a hostile peer wants to claim, correctly
 * signed. The receiving node's validation is what is under test.
 */
export function forgeEntry (signer: Signer, fields: ForgedFields): ForgedEntry {
  const unsigned = {
    v: fields.v ?? ENTRY_FORMAT_VERSION,
    author: fields.author ?? signer.publicHex,
    seq: fields.seq,
    prev: fields.prev,
    clock: fields.clock,
    time: fields.time,
    type: fields.type,
    body: fields.body
  }
  const id = createHash('sha256').update(canonicalJson(unsigned)).digest('hex')
  const sig = toHex(signer.sign(signedMessage(id)))
  const entry = { ...unsigned, sig }
  return { id, line: canonicalJson(entry), entry }
}

/** A fresh author key with its own chain, kept by the caller. */
export function throwawayAuthor (key: NodeKey = generateNodeKey()): ThrowawayAuthor {
  const signer = createSigner(key)
  const author: ThrowawayAuthor = {
    key,
    signer,
    hex: signer.publicHex,
    seq: 0,
    prev: null,
    next (fields) {
      const forged = forgeEntry(signer, { seq: fields.seq ?? author.seq, prev: fields.prev !== undefined ? fields.prev : author.prev, ...fields } as ForgedFields)
      author.seq = (fields.seq ?? author.seq) + 1
      author.prev = forged.id
      return forged
    }
  }
  return author
}

/**
 * A hostile peer built from the project's own libp2p stack (TCP, Noise,
 * Yamux, identify, gossipsub with StrictSign) under a fresh key: it joins a
 * live mesh as any stranger can, and then publishes whatever it likes.
 * Every honest node's gossip validation is what stands in its way.
 */
export class HostilePeer {
  readonly libp2p: MeshLibp2p

  constructor (libp2p: MeshLibp2p) {
    this.libp2p = libp2p
  }

  get peerId (): string { return this.libp2p.peerId.toString() }

  /** Dial a node (a multiaddr ending in /p2p/…) and wait until gossipsub has it in the entries topic. */
  async connect (address: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const target = multiaddr(address)
    await this.libp2p.dial(target)
    const peer = target.getComponents().find((c) => c.name === 'p2p')?.value
    if (peer === undefined) return
    await waitFor(() => this.libp2p.services.pubsub.getSubscribers(ENTRIES_TOPIC).some((id) => id.toString() === peer), {
      timeoutMs: options.timeoutMs ?? 15_000,
      what: `the hostile peer to see ${peer} subscribed to ${ENTRIES_TOPIC}`
    })
  }

  /** Publish raw bytes on a topic (as this peer; gossipsub signs the message with this peer's key). */
  async publish (topic: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
    await this.libp2p.services.pubsub.publish(topic, bytes)
  }

  /** Gossip an entry line on the entries topic, as an honest author's node would. */
  async publishEntry (entry: ForgedEntry | string): Promise<void> {
    await this.publish(ENTRIES_TOPIC, typeof entry === 'string' ? entry : entry.line)
  }

  /** Gossip a fork proof (two entry lines separated by a newline). */
  async publishForkProof (a: ForgedEntry, b: ForgedEntry): Promise<void> {
    await this.publish(FORKS_TOPIC, `${a.line}\n${b.line}`)
  }

  /** Gossip a heartbeat object (JSON) on the presence topic, signed by this peer's key. */
  async publishHeartbeat (heartbeat: Record<string, unknown>): Promise<void> {
    await this.publish(PRESENCE_TOPIC, JSON.stringify(heartbeat))
  }

  /**
   * Gossip as another key: a message whose origin (`from`) is `key`'s peer id,
   * signed by it as StrictSign wants, pushed to every peer this one has a
   * gossip stream to as if it were forwarding it. Gossipsub lets anyone
   * forward anyone's signed message, so one connection carries heartbeats of
   * as many fresh keys as the attacker makes (throwawayPeerKey), none of which
   * ever connected anywhere. Returns how many peers it was sent to. Uses
   * gossipsub's internal `sendRpc` (like observeWire uses its RPC handler).
   */
  async publishAs (key: PrivateKey, topic: string, data: Uint8Array | string): Promise<number> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
    const seqno = new Uint8Array(8)
    new DataView(seqno.buffer).setBigUint64(0, ++forgedSeqno, false)
    const unsigned: RPC.Message = { from: peerIdFromPrivateKey(key).toMultihash().bytes, data: bytes, seqno, topic }
    // What StrictSign signs: "libp2p-pubsub:" and the message without signature and key (an Ed25519 peer id holds its key).
    const signature = await key.sign(Buffer.concat([Buffer.from('libp2p-pubsub:'), RPC.Message.encode(unsigned)]))
    const pubsub = this.libp2p.services.pubsub as unknown as { sendRpc?: (id: string, rpc: RPC) => boolean }
    if (typeof pubsub.sendRpc !== 'function') throw new Error('this gossipsub has no sendRpc; update publishAs for the new version')
    let sent = 0
    for (const peer of this.libp2p.services.pubsub.getPeers()) {
      if (pubsub.sendRpc.call(this.libp2p.services.pubsub, peer.toString(), { subscriptions: [], messages: [{ ...unsigned, signature }] })) sent++
    }
    return sent
  }
}

/** Sequence numbers of forged gossip messages: rising, as receivers drop a key's replays. */
let forgedSeqno = BigInt(Date.now()) * 1_000_000n

/** A fresh libp2p key: a peer id (and log author) of its own, for free. */
export async function throwawayPeerKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

export interface HostilePeerOptions {
  topics?: string[]
  /** Its libp2p key (default: a fresh one): e.g. a key the test counts as a member. */
  privateKey?: PrivateKey
  /** The same as a node key (e.g. a founder key of the test mesh, for a member gone bad). */
  key?: NodeKey
  /** A private mesh's key, right or wrong (default: none, as a stranger has). */
  swarmKey?: Uint8Array
  /** Speak circuit relay (and the rest of NAT traversal), to use or abuse relays. */
  nat?: NatOptions
  /** Addresses it claims in identify besides its own (any it likes). */
  announce?: string[]
}

/**
 * Start a hostile peer on loopback under a fresh libp2p key (or `key`;
 * `announce`: addresses it claims in identify besides its own), subscribed to
 * the mesh's topics (so that it receives and can publish), stopped at
 * teardown. Its libp2p key is its peer id; the entries it forges can be
 * signed by any number of other throwaway authors.
 */
export async function hostilePeer (teardown: Teardown, options: HostilePeerOptions = {}): Promise<HostilePeer> {
  const topics = options.topics ?? [ENTRIES_TOPIC, FORKS_TOPIC, PRESENCE_TOPIC]
  const libp2p = await createMeshLibp2p({
    // A given key makes the peer that author on the network too (a member gone bad: its heartbeats are its own).
    privateKey: options.privateKey ?? (options.key !== undefined ? await libp2pPrivateKey(options.key) : await generateKeyPair('Ed25519')),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topics,
    ...(options.swarmKey !== undefined ? { swarmKey: options.swarmKey } : {}),
    ...(options.nat !== undefined ? { nat: options.nat } : {}),
    // Where else it tells peers (identify) that it listens: any address it likes.
    ...(options.announce !== undefined ? { announce: options.announce } : {})
  })
  teardown(async () => { await libp2p.stop() })
  for (const topic of topics) libp2p.services.pubsub.subscribe(topic)
  return new HostilePeer(libp2p)
}

/** A heartbeat that every node's presence validation accepts, with the fields a test wants changed. */
export function heartbeatOf (fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1,
    platforms: ['linux-x64'],
    slots: 1,
    free: 0,
    running: [],
    accepts: { network: false, root: false },
    version: '0.1.0',
    time: Date.now(),
    ...fields
  }
}

/** A result body that passes every body rule: status pass, the given artifacts, a plausible environment. */
export function fakeResultBody (job: string, platform: string, artifacts: Array<{ path: string, sha256: string, size: number }>): Record<string, unknown> {
  const now = Date.now()
  return {
    job,
    platform,
    status: 'pass',
    steps: [{ name: 'build', exit: 0, ms: 120 }],
    log: createHash('sha256').update(`a log for ${job}`).digest('hex'),
    logSize: 17,
    artifacts: [...artifacts].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    env: { os: 'Debian GNU/Linux 12', kernel: '6.1.0', arch: 'x64', sandbox: 'bubblewrap 0.8.0', tools: {} },
    start: now - 200,
    end: now
  }
}
