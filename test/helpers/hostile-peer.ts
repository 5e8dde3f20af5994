import { createHash } from 'node:crypto'
import { generateKeyPair, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { RPC } from '@libp2p/gossipsub/message'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
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
import { SYNC_PROTOCOL } from '../../src/ledger/sync/constants.js'
import { encodeFrame, type SyncFrame } from '../../src/ledger/sync/frames.js'
import { canonicalJson } from '../../src/util/canonical-json.js'
import { toHex } from '../../src/util/hex.js'
import { delay, waitFor } from '../../src/util/wait.js'

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
  const { unsigned, id } = unsignedEntry(fields, fields.author ?? signer.publicHex)
  const sig = toHex(signer.sign(signedMessage(id)))
  const entry = { ...unsigned, sig }
  return { id, line: canonicalJson(entry), entry }
}

/**
 * An entry with a signature chosen by the forger rather than made by a key:
 * any `author` (e.g. a small-order point) and any 64 bytes of `sig`. What a
 * peer that attacks the signature scheme itself sends.
 */
export function forgeEntryWithSignature (fields: ForgedFields & { author: string }, sig: string): ForgedEntry {
  const { unsigned, id } = unsignedEntry(fields, fields.author)
  const entry = { ...unsigned, sig }
  return { id, line: canonicalJson(entry), entry }
}

/** The identity point of edwards25519 as a public key (y = 1): with R = identity and S = 0 it "signs" every message under a lax verifier. */
export const IDENTITY_KEY = `01${'00'.repeat(31)}`

/** The signature (R = identity, S = 0) that an identity-point key "makes" on every message. */
export const IDENTITY_SIGNATURE = `01${'00'.repeat(63)}`

/**
 * A libp2p key whose public half is the identity point (IDENTITY_KEY) and
 * whose every signature is IDENTITY_SIGNATURE: a lax Ed25519 verify (libp2p's
 * Noise handshake, gossipsub's StrictSign) accepts them all, so a peer under
 * this key completes a handshake without holding any private key.
 */
export function identityPointKey (): PrivateKey {
  const publicKey = publicKeyFromRaw(Buffer.from(IDENTITY_KEY, 'hex'))
  const signature = Uint8Array.from(Buffer.from(IDENTITY_SIGNATURE, 'hex'))
  return {
    type: 'Ed25519',
    raw: new Uint8Array(64),
    publicKey,
    equals: (other: unknown) => other === publicKey,
    sign: () => signature
  } as unknown as PrivateKey
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

  /**
   * Gossip many entries at a steady rate, as a flooder that wants them
   * delivered would: gossipsub has no backpressure, and a burst past a
   * stream's write buffer resets the stream to that peer. Resolves to how
   * many were published.
   */
  async flood (entries: Array<ForgedEntry | string>, options: { perSecond: number }): Promise<number> {
    const started = Date.now()
    let published = 0
    for (const [i, entry] of entries.entries()) {
      const due = started + (i * 1000) / options.perSecond
      if (due > Date.now()) await delay(due - Date.now())
      await this.#drained()
      await this.publishEntry(entry).then(() => { published++ }, () => {})
    }
    return published
  }

  /** Wait until every gossip stream to a peer has room again (what a flooder that wants delivery does). */
  async #drained (): Promise<void> {
    const outbound = (this.libp2p.services.pubsub as unknown as { streamsOutbound: Map<string, { rawStream: Stream }> }).streamsOutbound
    for (const { rawStream } of outbound.values()) {
      if (rawStream.status !== 'open') continue
      if (rawStream.writableNeedsDrain || rawStream.writeBufferLength > 256 * 1024) {
        await rawStream.onDrain({ signal: AbortSignal.timeout(30_000) }).catch(() => {})
      }
    }
  }

  /** Gossip a fork proof (two entry lines separated by a newline). */
  async publishForkProof (a: ForgedEntry, b: ForgedEntry): Promise<void> {
    await this.publish(FORKS_TOPIC, `${a.line}\n${b.line}`)
  }

  /**
   * Push entry lines to a node over the sync protocol, as the dialer of one
   * session: empty heads (so the node sends its whole log, which is read and
   * dropped), then the lines in frames of `perFrame`, then end and done.
   * Resolves once the node closed or aborted the stream: `aborted` says
   * whether it cut the session off (it judged the peer hostile).
   */
  async pushBySync (address: string, lines: string[], options: { perFrame?: number, timeoutMs?: number } = {}): Promise<{ aborted: boolean, status: string }> {
    const stream: Stream = await this.libp2p.dialProtocol(multiaddr(address), SYNC_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const send = async (frame: SyncFrame): Promise<void> => {
      if (stream.status !== 'open') return
      if (!stream.send(lp.encode.single(encodeFrame(frame), { maxDataLength: 1024 * 1024 }))) await stream.onDrain({ signal: AbortSignal.timeout(10_000) }).catch(() => {})
    }
    // Read (and drop) whatever the node sends, so its side is never held up by flow control.
    const draining = (async () => { try { for await (const _ of stream) { /* dropped */ } } catch { /* aborted */ } })()
    const perFrame = options.perFrame ?? 64
    try {
      await send({ t: 'heads', heads: [], more: false })
      for (let i = 0; i < lines.length; i += perFrame) await send({ t: 'entries', lines: lines.slice(i, i + perFrame) })
      await send({ t: 'end', more: false })
      await send({ t: 'done' })
      if (stream.status === 'open') await stream.close({ signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) }).catch(() => {})
    } catch {
      // The node aborted the stream under us.
    }
    await waitFor(() => stream.status !== 'open', { timeoutMs: options.timeoutMs ?? 30_000, what: 'the node to end the sync session' }).catch(() => { stream.abort(new Error('the test gave up on the session')) })
    await draining
    return { aborted: stream.status === 'aborted' || stream.status === 'reset', status: stream.status }
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

/** The fields an entry's id covers, exactly as given, and that id. */
function unsignedEntry (fields: ForgedFields, author: string): { unsigned: Record<string, unknown>, id: string } {
  const unsigned = { v: fields.v ?? ENTRY_FORMAT_VERSION, author, seq: fields.seq, prev: fields.prev, clock: fields.clock, time: fields.time, type: fields.type, body: fields.body }
  return { unsigned, id: createHash('sha256').update(canonicalJson(unsigned)).digest('hex') }
}
