import { TopicValidatorResult, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { authorOfPeerId } from '../../crypto/peer-id.js'
import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import { jobOfEntry, trace, traceNow, tracing } from '../../util/trace.js'
import { QuotaBucket, type Admission } from '../admission/index.js'
import { MAX_ENTRY_BYTES } from '../constants.js'
import { verifyEntrySignature, type DecodedEntry } from '../entry.js'
import { decodeForkProof, encodeForkProof, type ForkProof } from '../forks.js'
import { futureProblem, type LedgerStore } from '../store.js'
import {
  ENTRIES_TOPIC, FORKS_TOPIC, MAX_GOSSIP_BACKLOG, MAX_GOSSIP_BACKLOG_BYTES, MAX_GOSSIP_INGEST_BATCH, MAX_OUTBOX, MAX_OUTBOX_BYTES,
  MAX_REMEMBERED_GOSSIP_FORKS
} from './constants.js'
import type { EntryGossipComponents, GossipPubSub } from './index.js'

const log = componentLogger('ledger:gossip')
const encoder = new TextEncoder()

/** How a gossiped entry fared, for stats and tests. */
export interface EntryGossipStats {
  accepted: number
  /** Rejected: not a valid entry, a bad signature, or a peer delivering more than an honest relay can (each one lowers the sender's gossip score). */
  rejected: number
  /** Ignored: valid but not taken now (known, too far ahead, over quota, …): nobody is penalised. */
  ignored: number
  /** Own entries waiting to be published at the pace peers accept. */
  outbox: number
}

/**
 * The fast path: every entry this node appends is published, and entries
 * from the mesh are checked by the topic validator before gossipsub forwards
 * them, then stored. Gossip may lose or reorder entries; sync repairs that.
 *
 * The validator's verdicts decide who gossipsub penalises. It Rejects (the
 * peer that handed the message over pays) only what no honest node forwards:
 * a malformed entry, a bad signature, an author's chain whose clock does not
 * rise when that author itself sends it, and — with quotas — deliveries of
 * strangers' entries past what an honest relay can have accepted under the
 * same quotas (RELAY_QUOTA). Everything valid but unwanted now is Ignored
 * (not forwarded, nobody penalised): already held, too far in the future,
 * after its author's revoke, from an equivocating author, or over its
 * author's or all strangers' quota — an honest relay may have accepted it a
 * moment earlier, when its buckets held more than ours.
 */
export class EntryGossip {
  private readonly pubsub: GossipPubSub
  private readonly store: LedgerStore
  private readonly admission: Admission | undefined
  /** Entries the validator already decoded and verified, by message payload. */
  private readonly checked = new WeakMap<Uint8Array, DecodedEntry>()
  private readonly checkedProofs = new WeakMap<Uint8Array, ForkProof>()
  /** Forks learnt by gossip: not re-published (gossipsub already forwards them). Bounded. */
  private readonly forksFromGossip = new Set<string>()
  private readonly counters = { accepted: 0, rejected: 0, ignored: 0 }
  private backlog: DecodedEntry[] = []
  private backlogBytes = 0
  private draining = false
  private running = false
  /** Own entries waiting to be published, paced by #pace. */
  private outbox: string[] = []
  private outboxBytes = 0
  private pace: QuotaBucket | undefined
  private pumpTimer: NodeJS.Timeout | undefined

  constructor (components: EntryGossipComponents) {
    this.pubsub = components.pubsub
    this.store = components.store
    this.admission = components.admission
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
    clearTimeout(this.pumpTimer)
    this.store.removeEventListener('append', this.onAppend)
    this.store.removeEventListener('fork', this.onFork)
    this.pubsub.removeEventListener('message', this.onMessage)
    for (const topic of [ENTRIES_TOPIC, FORKS_TOPIC]) {
      try { this.pubsub.unsubscribe(topic) } catch { /* the pubsub may already be stopped */ }
      this.pubsub.topicValidators.delete(topic)
    }
    this.backlog = []
    this.backlogBytes = 0
    this.outbox = []
    this.outboxBytes = 0
  }

  stats (): EntryGossipStats {
    return { ...this.counters, outbox: this.outbox.length }
  }

  private readonly validateEntry = (peer: PeerId, message: Message): TopicValidatorResult => {
    const at = tracing ? traceNow() : 0
    const verdict = this.judgeEntry(peer, message)
    if (tracing) {
      const decoded = this.checked.get(message.data)
      if (decoded !== undefined) trace(`validate-${decoded.entry.type}`, jobOfEntry(decoded), at)
    }
    if (verdict === TopicValidatorResult.Accept) this.counters.accepted++
    else if (verdict === TopicValidatorResult.Reject) this.counters.rejected++
    else this.counters.ignored++
    return verdict
  }

  private judgeEntry (peer: PeerId, message: Message): TopicValidatorResult {
    const bytes = message.data.byteLength
    if (bytes > MAX_ENTRY_BYTES) return TopicValidatorResult.Reject
    let decoded: DecodedEntry
    try {
      // The signature last: the cheap checks below decide most floods without it.
      decoded = this.store.codec.decode(message.data, { verify: false })
    } catch (err) {
      log('rejecting a gossiped entry: %s', describeError(err))
      return TopicValidatorResult.Reject
    }
    const { author, seq, clock } = decoded.entry
    const relay = relayOf(peer)
    // Every delivery of a stranger's entry counts, whatever becomes of it: an honest relay
    // forwards only what it accepted, so it can never deliver more than RELAY_QUOTA.
    if (this.admission !== undefined && !this.admission.delivered(relay, author, bytes)) {
      log('rejecting entry %s from %p: it delivered more strangers\' entries than an honest relay can', decoded.id, peer)
      return TopicValidatorResult.Reject
    }
    if (this.store.isEquivocating(author)) return TopicValidatorResult.Ignore
    const tip = this.store.tip(author)
    if (tip !== undefined && seq === tip.seq && decoded.id === tip.id) return TopicValidatorResult.Ignore
    const ahead = futureProblem(decoded, this.store.now())
    if (ahead !== undefined) {
      log('ignoring a gossiped entry: %s', ahead)
      return TopicValidatorResult.Ignore
    }
    if (tip !== undefined && seq > tip.seq && tip.final === true) return TopicValidatorResult.Ignore
    if (tip !== undefined && seq === tip.seq + 1 && clock <= tip.clock) {
      // Only its author can be blamed for a chain whose clock does not rise: a relay may not have held the predecessor.
      log('entry %s: clock %d not above its predecessor\'s %d', decoded.id, clock, tip.clock)
      return relay === author ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    if (this.admission !== undefined && this.admission.peek(author, bytes) !== undefined) return TopicValidatorResult.Ignore
    if (!verifyEntrySignature(decoded)) {
      log('rejecting a gossiped entry: the signature of %s does not verify against author %s', decoded.id, author)
      return TopicValidatorResult.Reject
    }
    if (this.admission !== undefined && this.admission.admit(author, bytes) !== undefined) return TopicValidatorResult.Ignore
    this.checked.set(message.data, decoded)
    return TopicValidatorResult.Accept
  }

  private readonly validateFork = (peer: PeerId, message: Message): TopicValidatorResult => {
    if (message.data.byteLength > 2 * MAX_ENTRY_BYTES + 1) return TopicValidatorResult.Reject
    let proof: ForkProof
    try {
      proof = decodeForkProof(this.store.codec, Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength).toString('utf8'))
    } catch (err) {
      log('rejecting a gossiped fork proof: %s', describeError(err))
      return TopicValidatorResult.Reject
    }
    if (this.admission !== undefined) {
      const bytes = message.data.byteLength
      if (!this.admission.delivered(relayOf(peer), proof.author, bytes)) return TopicValidatorResult.Reject
      // The first proof of an author is what matters; more add little, and evidence costs its author's quota.
      if (this.store.isEquivocating(proof.author)) return TopicValidatorResult.Ignore
      if (this.admission.admit(proof.author, bytes) !== undefined) return TopicValidatorResult.Ignore
    }
    this.checkedProofs.set(message.data, proof)
    return TopicValidatorResult.Accept
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const message = evt.detail
    if (message.topic === ENTRIES_TOPIC) {
      const decoded = this.checked.get(message.data)
      if (decoded === undefined) return
      if (tracing) trace(`message-${decoded.entry.type}`, jobOfEntry(decoded))
      const size = decoded.line.length
      if (this.backlog.length >= MAX_GOSSIP_BACKLOG || this.backlogBytes + size > MAX_GOSSIP_BACKLOG_BYTES) {
        log('gossip backlog full: dropping entry %s, sync will bring it', decoded.id)
        return
      }
      this.backlog.push(decoded)
      this.backlogBytes += size
      void this.drain()
    } else if (message.topic === FORKS_TOPIC) {
      const proof = this.checkedProofs.get(message.data)
      if (proof === undefined) return
      if (this.forksFromGossip.size >= MAX_REMEMBERED_GOSSIP_FORKS) this.forksFromGossip.delete(this.forksFromGossip.values().next().value!)
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
        for (const entry of batch) this.backlogBytes -= entry.line.length
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
    if (tracing) trace(`publish-${evt.detail.entry.type}`, jobOfEntry(evt.detail))
    if (this.admission === undefined) {
      this.publish(ENTRIES_TOPIC, evt.detail.line)
      return
    }
    // Published no faster than peers take this node's entries: over its quota they would be ignored.
    const line = evt.detail.line
    while (this.outbox.length > 0 && (this.outbox.length >= MAX_OUTBOX || this.outboxBytes + line.length > MAX_OUTBOX_BYTES)) {
      this.outboxBytes -= this.outbox.shift()!.length
    }
    this.outbox.push(line)
    this.outboxBytes += line.length
    this.pump()
  }

  private pump (): void {
    if (this.pumpTimer !== undefined || !this.running) return
    const quota = this.admission!.ownQuota()
    if (this.pace?.quota !== quota) this.pace = new QuotaBucket(quota, Date.now())
    while (this.outbox.length > 0) {
      const line = this.outbox[0]!
      const bytes = Buffer.byteLength(line)
      const now = Date.now()
      const wait = this.pace.waitSeconds(bytes, now)
      if (wait > 0 && Number.isFinite(wait)) {
        this.pumpTimer = setTimeout(() => { this.pumpTimer = undefined; this.pump() }, Math.ceil(wait * 1000))
        this.pumpTimer.unref()
        return
      }
      this.outbox.shift()
      this.outboxBytes -= line.length
      if (Number.isFinite(wait)) this.pace.take(bytes, now)
      this.publish(ENTRIES_TOPIC, line)
    }
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

/** The author key of the peer that handed a message over (its peer id), or its peer id string when it is not Ed25519. */
function relayOf (peer: PeerId): string {
  try {
    return authorOfPeerId(peer)
  } catch {
    return peer.toString()
  }
}
