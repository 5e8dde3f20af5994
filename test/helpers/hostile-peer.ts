import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
import { generateNodeKey, type NodeKey } from '../../src/crypto/keys.js'
import { createSigner, type Signer } from '../../src/crypto/sign.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
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

/**
 * An entry with a signature chosen by the forger rather than made by a key:
 * any `author` (e.g. a small-order point) and any 64 bytes of `sig`. What a
 * peer that attacks the signature scheme itself sends.
 */
export function forgeEntryWithSignature (fields: ForgedFields & { author: string }, sig: string): ForgedEntry {
  const unsigned = {
    v: fields.v ?? ENTRY_FORMAT_VERSION,
    author: fields.author,
    seq: fields.seq,
    prev: fields.prev,
    clock: fields.clock,
    time: fields.time,
    type: fields.type,
    body: fields.body
  }
  const id = createHash('sha256').update(canonicalJson(unsigned)).digest('hex')
  const entry = { ...unsigned, sig }
  return { id, line: canonicalJson(entry), entry }
}

/** The identity point of edwards25519 as a public key (y = 1): with R = identity and S = 0 it "signs" every message under a lax verifier. */
export const IDENTITY_KEY = `01${'00'.repeat(31)}`

/** The signature (R = identity, S = 0) that an identity-point key "makes" on every message. */
export const IDENTITY_SIGNATURE = `01${'00'.repeat(63)}`

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
}

/**
 * Start a hostile peer on loopback under a fresh libp2p key, subscribed to
 * the mesh's topics (so that it receives and can publish), stopped at
 * teardown. Its libp2p key is its peer id; the entries it forges can be
 * signed by any number of other throwaway authors.
 */
export async function hostilePeer (teardown: Teardown, options: { topics?: string[] } = {}): Promise<HostilePeer> {
  const topics = options.topics ?? [ENTRIES_TOPIC, FORKS_TOPIC, PRESENCE_TOPIC]
  const libp2p = await createMeshLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topics
  })
  teardown(async () => { await libp2p.stop() })
  for (const topic of topics) libp2p.services.pubsub.subscribe(topic)
  return new HostilePeer(libp2p)
}
