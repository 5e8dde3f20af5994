import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import { MAX_ENTRY_BYTES } from '../constants.js'
import type { DecodedEntry } from '../entry.js'
import { decodeForkProof, encodeForkProof, type ForkProof } from '../forks.js'
import type { LedgerStore } from '../store.js'
import { ENTRIES_TOPIC, FORKS_TOPIC, MAX_GOSSIP_BACKLOG, MAX_GOSSIP_INGEST_BATCH } from './constants.js'
import type { EntryGossipComponents, GossipPubSub } from './index.js'

const log = componentLogger('ledger:gossip')
const encoder = new TextEncoder()

/**
 * The fast path: every entry this node appends is published at once, and
 * entries from the mesh are checked by the topic validator (size, shape,
 * signature) before gossipsub forwards them — an invalid one is Rejected, so
 * gossipsub penalises the peer that sent it — then stored. Fork proofs travel
 * the same way on their own topic, so a forking key is quarantined mesh-wide.
 * Gossip may lose or reorder entries; sync repairs that.
 */
export class EntryGossip {
  private readonly pubsub: GossipPubSub
  private readonly store: LedgerStore
  /** Entries the validator already decoded and verified, by message payload. */
  private readonly checked = new WeakMap<Uint8Array, DecodedEntry>()
  private readonly checkedProofs = new WeakMap<Uint8Array, ForkProof>()
  /** Forks learnt by gossip: not re-published (gossipsub already forwards them). */
  private readonly forksFromGossip = new Set<string>()
  private backlog: DecodedEntry[] = []
  private draining = false
  private running = false

  constructor (components: EntryGossipComponents) {
    this.pubsub = components.pubsub
    this.store = components.store
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.pubsub.topicValidators.set(ENTRIES_TOPIC, this.validateEntry)
    this.pubsub.topicValidators.set(FORKS_TOPIC, this.validateFork)
    this.pubsub.addEventListener('message', this.onMessage)
    this.pubsub.subscribe(ENTRIES_TOPIC)
    this.pubsub.subscribe(FORKS_TOPIC)
    this.store.addEventListener('append', this.onAppend)
    this.store.addEventListener('fork', this.onFork)
  }

  stop (): void {
    if (!this.running) return
    this.running = false
    this.store.removeEventListener('append', this.onAppend)
    this.store.removeEventListener('fork', this.onFork)
    this.pubsub.removeEventListener('message', this.onMessage)
    for (const topic of [ENTRIES_TOPIC, FORKS_TOPIC]) {
      try { this.pubsub.unsubscribe(topic) } catch { /* the pubsub may already be stopped */ }
      this.pubsub.topicValidators.delete(topic)
    }
    this.backlog = []
  }

  private readonly validateEntry = (_peer: PeerId, message: Message): TopicValidatorResult => {
    if (message.data.byteLength > MAX_ENTRY_BYTES) return TopicValidatorResult.Reject
    let decoded: DecodedEntry
    try {
      decoded = this.store.codec.decode(message.data)
    } catch (err) {
      log('rejecting a gossiped entry: %s', describeError(err))
      return TopicValidatorResult.Reject
    }
    // Valid but unwanted: not the sender's fault, so not punished, just not forwarded.
    if (this.store.isEquivocating(decoded.entry.author)) return TopicValidatorResult.Ignore
    this.checked.set(message.data, decoded)
    return TopicValidatorResult.Accept
  }

  private readonly validateFork = (_peer: PeerId, message: Message): TopicValidatorResult => {
    if (message.data.byteLength > 2 * MAX_ENTRY_BYTES + 1) return TopicValidatorResult.Reject
    try {
      const proof = decodeForkProof(this.store.codec, Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength).toString('utf8'))
      this.checkedProofs.set(message.data, proof)
      return TopicValidatorResult.Accept
    } catch (err) {
      log('rejecting a gossiped fork proof: %s', describeError(err))
      return TopicValidatorResult.Reject
    }
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const message = evt.detail
    if (message.topic === ENTRIES_TOPIC) {
      const decoded = this.checked.get(message.data)
      if (decoded === undefined) return
      if (this.backlog.length >= MAX_GOSSIP_BACKLOG) {
        log('gossip backlog full: dropping entry %s, sync will bring it', decoded.id)
        return
      }
      this.backlog.push(decoded)
      void this.drain()
    } else if (message.topic === FORKS_TOPIC) {
      const proof = this.checkedProofs.get(message.data)
      if (proof === undefined) return
      this.forksFromGossip.add(`${proof.author}!${proof.seq}`)
      this.store.ingestForkProof(proof.entries[0], proof.entries[1], { verified: true }).catch((err: unknown) => {
        log('storing a gossiped fork proof failed: %s', describeError(err))
      })
    }
  }

  /** Store waiting entries in batches: one ingest (one fsync) at a time, taking all that queued meanwhile. */
  private async drain (): Promise<void> {
    if (this.draining) return
    this.draining = true
    try {
      while (this.backlog.length > 0 && this.running && !this.store.closed) {
        const batch = this.backlog.splice(0, MAX_GOSSIP_INGEST_BATCH)
        try {
          await this.store.ingest(batch, { verified: true })
        } catch (err) {
          log('storing gossiped entries failed: %s', describeError(err))
        }
      }
    } finally {
      this.draining = false
    }
  }

  private readonly onAppend = (evt: CustomEvent<DecodedEntry>): void => {
    this.publish(ENTRIES_TOPIC, evt.detail.line)
  }

  private readonly onFork = (evt: CustomEvent<ForkProof>): void => {
    const proof = evt.detail
    if (this.forksFromGossip.delete(`${proof.author}!${proof.seq}`)) return
    log('publishing fork proof: author %s seq %d', proof.author, proof.seq)
    this.publish(FORKS_TOPIC, encodeForkProof(proof))
  }

  private publish (topic: string, text: string): void {
    this.pubsub.publish(topic, encoder.encode(text)).catch((err: unknown) => {
      log('publishing on %s failed (sync will carry it): %s', topic, describeError(err))
    })
  }
}
