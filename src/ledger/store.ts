import { setMaxListeners } from 'node:events'
import { Level } from 'level'
import type { Signer } from '../crypto/sign.js'
import { EnvironmentError, describeError } from '../util/errors.js'
import { TypedEvents } from '../util/events.js'
import { isHex } from '../util/hex.js'
import { componentLogger } from '../util/logger.js'
import { SerialQueue } from '../util/serial-queue.js'
import { jobOfEntry, trace, tracing } from '../util/trace.js'
import { DEFAULT_PENDING_BYTES, DEFAULT_PENDING_LIMIT, MAX_ADOPTED_AHEAD_MS, MAX_CACHED_HEADS, MAX_FORK_SEQS_PER_AUTHOR, MAX_FUTURE_MS } from './constants.js'
import { decodeTrusted, type DecodedEntry, type EntryBody, type EntryCodec } from './entry.js'
import {
  AppendNotAllowedError, ChainEndedError, InvalidEntryError, LedgerClosedError, LedgerWriteError, ReadOnlyLedgerError, SelfForkError,
  type InvalidEntryReason
} from './errors.js'
import { checkForkPair, type ForkProof } from './forks.js'
import type { Admission } from './admission/index.js'
import { PendingBuffer } from './pending.js'
import {
  STORE_FORMAT, decodeHead, encodeHead, keys, parseForkKey, type StoredHead
} from './store-keys.js'
import { exportLinesOf } from './export.js'
import { LedgerQueries, type ChainHead } from './queries.js'
import { sharedVerifyPool, verifyEntries, type BatchVerifier } from './verify-pool.js'
import { WriteBehind, type PutOp } from './write-behind.js'

/** How often peers' entries try the disk again after a failed write. */
const WRITE_RETRY_MS = 1_000

const log = componentLogger('ledger:store')

export type { ChainHead } from './queries.js'

export interface LedgerStoreOptions {
  /** Directory of the LevelDB (created if missing). */
  path: string
  codec: EntryCodec
  /** The node's own key: needed for append(), and names the chain the self-fork guard protects. */
  signer?: Signer
  /** Most out-of-order entries held in memory waiting for predecessors (default 10,000). */
  pendingLimit?: number
  /** Most bytes of such entries (default 32 MiB). */
  pendingBytes?: number
  /** Signature verification for ingest; default: the process-wide worker pool. */
  verifier?: BatchVerifier
  /** This node's wall clock, ms since the epoch (default Date.now): entries' time and clock are judged against it. */
  now?: () => number
  /** Chain heads kept in memory (default MAX_CACHED_HEADS). */
  maxCachedHeads?: number
}

/**
 * Why ingest did not store an entry. `future` and `over-quota` are "not now"
 * (the entry may be taken later: the receiver's clock catches up, the quota
 * refills); the others are final for this entry.
 */
export type IngestRejectReason = InvalidEntryReason | 'prev-mismatch' | 'equivocating' | 'future' | 'clock-not-rising' | 'chain-ended' | 'over-quota'

export interface IngestRejection {
  /** Position of the entry in the ingest() input. */
  index: number
  id?: string
  reason: IngestRejectReason
  message: string
}

export interface IngestReport {
  /** Entries newly stored on their chains, in the order stored. */
  accepted: DecodedEntry[]
  /** Entries already held (on a chain, as fork evidence, or waiting in the pending buffer). */
  duplicates: number
  /** Entries parked until their predecessors arrive. */
  pending: number
  rejected: IngestRejection[]
  /** Forks this ingest discovered. */
  forks: ForkProof[]
}

export interface LedgerStats {
  entries: number
  /** Bytes of the entry lines held (chains and fork evidence): the log's size before LevelDB's overhead and compression. */
  bytes: number
  authors: number
  pending: number
  pendingBytes: number
  equivocatingAuthors: number
}

export interface LedgerStoreEvents {
  /** A chain entry was stored (appended or ingested); fired once written (own appends: durable), in chain order. */
  entry: CustomEvent<DecodedEntry>
  /** This node appended an entry (fired after `entry`). */
  append: CustomEvent<DecodedEntry>
  /** A new fork proof was stored; its author is no longer accepted. */
  fork: CustomEvent<ForkProof>
}

type BatchOp = PutOp

interface AppendRequest {
  type: string
  body: EntryBody
  resolve: (entry: DecodedEntry) => void
  reject: (err: unknown) => void
}

/** Most appends written by one fsync when callers append concurrently. */
const MAX_APPENDS_PER_WRITE = 256
/** Changes staged by one write, committed to memory only once LevelDB has them. */
class Staging {
  readonly ops: BatchOp[] = []
  readonly heads = new Map<string, StoredHead>()
  readonly chainLines = new Map<string, DecodedEntry>()
  readonly forkSeqs = new Map<string, Set<number>>()
  readonly accepted: DecodedEntry[] = []
  readonly forks: ForkProof[] = []
  /** Authors whose quota ran out during this ingest: their later entries are refused without asking again. */
  readonly overQuota = new Set<string>()
  count: number
  authors: number
  maxClock: number
  adopted: number
  bytes: number

  constructor (store: { count: number, authors: number, maxClock: number, adopted: number, bytes: number }) {
    this.count = store.count
    this.authors = store.authors
    this.maxClock = store.maxClock
    this.adopted = store.adopted
    this.bytes = store.bytes
  }
}

/**
 * The ledger's LevelDB: every author's chain, verified before it is stored,
 * indexes by type and by referenced id, fork evidence, and this node's own
 * appends. Writes are serialised (appends and ingests from gossip and sync
 * interleave safely). This node's own appends and fork evidence are durable
 * (fsync) before events fire or promises resolve: a signed entry must never
 * be signed again differently after a crash. Entries from elsewhere are
 * written without waiting for the disk (peers hold them, sync fetches what a
 * crash loses, and the next own append makes them durable): an fsync on every
 * hop was the largest wait of a job's path from submission to verdict.
 * Key layout: store-keys.ts.
 *
 * Event listeners run inside the write turn, synchronously: they must be
 * quick and must not throw (an exception in an EventTarget listener is an
 * uncaught exception). They may call append() or ingest(), which queue.
 */
export class LedgerStore extends TypedEvents<LedgerStoreEvents> {
  readonly codec: EntryCodec
  readonly path: string
  /** The node's own author (public key hex), if opened with a signer. */
  readonly author: string | undefined
  private readonly db: Level<string, string>
  private readonly signer: Signer | undefined
  private readonly verifier: BatchVerifier
  private readonly queue = new SerialQueue()
  private readonly pending: PendingBuffer
  private readonly queries: LedgerQueries
  /** Every write, in order; peers' entries are written behind (visible before LevelDB has them). */
  private readonly writes: WriteBehind
  /**
   * Chain heads recently used, bounded (MAX_CACHED_HEADS); LevelDB's h! keys
   * are the truth. Fresh keys cost nothing, so a map of every author would
   * grow without end.
   */
  private readonly headsByAuthor = new Map<string, StoredHead>()
  private ownStoredHead: StoredHead | undefined
  private authors = 0
  /** Authors with stored fork evidence, and at which seqs. */
  private readonly forkSeqs = new Map<string, Set<number>>()
  private readonly wallClock: () => number
  private readonly maxCachedHeads: number
  private appendQueue: AppendRequest[] = []
  private appendsAllowed = false
  private entryCount = 0
  /** Bytes of entry lines on chains and as fork evidence (what the log holds, before LevelDB's own overhead). */
  private bytes = 0
  private highestClock = -1
  /** The clock this node's next entry must exceed: the greatest clock held, but never more than MAX_ADOPTED_AHEAD_MS past the wall clock when adopted. */
  private adopted = -1
  private isClosed = false

  private constructor (db: Level<string, string>, options: LedgerStoreOptions) {
    super()
    // Every part of the node listens to the log: no MaxListenersExceededWarning for that.
    setMaxListeners(Infinity, this)
    this.db = db
    this.writes = new WriteBehind({
      batch: async (ops, options) => { await db.batch(ops, options) },
      recover: async () => {
        log.error('reopening the ledger\'s LevelDB after a failed write, so that what is written next is not lost behind a torn record')
        await db.close()
        await db.open()
      }
    })
    this.queries = new LedgerQueries(db, async () => { await this.writes.settled() })
    this.path = options.path
    this.codec = options.codec
    this.signer = options.signer
    this.author = options.signer?.publicHex
    this.verifier = options.verifier ?? sharedVerifyPool()
    this.wallClock = options.now ?? Date.now
    this.maxCachedHeads = Math.max(1, options.maxCachedHeads ?? MAX_CACHED_HEADS)
    this.pending = new PendingBuffer({
      maxEntries: options.pendingLimit ?? DEFAULT_PENDING_LIMIT,
      maxBytes: options.pendingBytes ?? DEFAULT_PENDING_BYTES
    }, (entry, why) => {
      log('dropped out-of-order entry %s (author %s seq %d): %s; sync will fetch it again in order', entry.id, entry.entry.author, entry.entry.seq, why)
    })
  }

  static async open (options: LedgerStoreOptions): Promise<LedgerStore> {
    const db = new Level<string, string>(options.path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    try {
      await db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new EnvironmentError(`the ledger at ${options.path} is in use by another process; stop the other buildhaus node using this home first`, { cause: err })
      }
      throw new EnvironmentError(`cannot open the ledger at ${options.path}: ${describeError(cause ?? err)}`, { cause: err })
    }
    const store = new LedgerStore(db, options)
    try {
      await store.load()
    } catch (err) {
      await db.close()
      throw err
    }
    return store
  }

  private async load (): Promise<void> {
    const format = await this.db.get(keys.meta('format'))
    if (format === undefined) {
      await this.db.put(keys.meta('format'), STORE_FORMAT, { sync: true })
    } else if (format !== STORE_FORMAT) {
      throw new EnvironmentError(`the ledger at ${this.path} has store format ${format}, this buildhaus reads format ${STORE_FORMAT}; export it with the version that wrote it`)
    }
    for await (const key of this.db.keys(keys.allForks())) {
      const { author, seq } = parseForkKey(key)
      addForkSeq(this.forkSeqs, author, seq)
    }
    if (this.author !== undefined) {
      const own = await this.db.get(keys.head(this.author))
      if (own !== undefined) this.ownStoredHead = decodeHead(own)
    }
    const [count, authors, clock, bytes] = await this.db.getMany([keys.meta('count'), keys.meta('authors'), keys.meta('clock'), keys.meta('bytes')])
    if ([count, authors, clock, bytes].every((v) => v !== undefined && /^-?\d+$/.test(v))) {
      this.entryCount = Number(count)
      this.authors = Number(authors)
      this.highestClock = Number(clock)
      this.bytes = Number(bytes)
    } else {
      // A store written before these counters were kept: count once; every commit keeps them from now on.
      // Chains are stored contiguously from seq 0, so the heads say how many entries there are.
      for await (const value of this.db.values(keys.allHeads())) {
        const head = decodeHead(value)
        this.entryCount += head.seq + 1
        this.authors++
        this.highestClock = Math.max(this.highestClock, head.clock)
      }
      this.bytes = await this.countBytes()
    }
    this.adopted = Math.min(this.highestClock, this.wallClock() + MAX_ADOPTED_AHEAD_MS)
    if (this.author !== undefined && this.forkSeqs.has(this.author)) {
      log.error('this node\'s own chain is forked (stored fork evidence); appends are refused')
    }
  }

  /** Bytes of every line held: read once from a store written before m!bytes was kept. */
  private async countBytes (): Promise<number> {
    let total = 0
    for (const range of [keys.allChains(), keys.allForks()]) {
      for await (const line of this.db.values(range)) total += Buffer.byteLength(line)
    }
    return total
  }

  // ---- writing ----------------------------------------------------------

  /**
   * Allow append(). Call it once the node has learnt its own chain from the
   * mesh (LedgerSync.learnOwnChain), so a restored backup cannot fork it.
   */
  allowAppend (): void {
    this.appendsAllowed = true
  }

  get appendAllowed (): boolean {
    return this.appendsAllowed
  }

  /** True once two different entries signed by this node's own key at one seq were seen. */
  get selfForked (): boolean {
    return this.author !== undefined && this.forkSeqs.has(this.author)
  }

  private stage (): Staging {
    return new Staging({ count: this.entryCount, authors: this.authors, maxClock: this.highestClock, adopted: this.adopted, bytes: this.bytes })
  }

  /** An author's head: staged, cached, or read from LevelDB (then cached). */
  private async storedHeadOf (stage: Staging, author: string): Promise<StoredHead | undefined> {
    const staged = stage.heads.get(author)
    if (staged !== undefined) return staged
    if (author === this.author) return this.ownStoredHead
    const cachedHead = this.headsByAuthor.get(author)
    if (cachedHead !== undefined) {
      // Most recently used last: the first keys are the ones to forget.
      this.headsByAuthor.delete(author)
      this.headsByAuthor.set(author, cachedHead)
      return cachedHead
    }
    await this.writes.settled()
    const value = await this.db.get(keys.head(author))
    if (value === undefined) return undefined
    const head = decodeHead(value)
    this.cacheHead(author, head)
    return head
  }

  private cacheHead (author: string, head: StoredHead): void {
    if (author === this.author) {
      this.ownStoredHead = head
      return
    }
    this.headsByAuthor.delete(author)
    this.headsByAuthor.set(author, head)
    while (this.headsByAuthor.size > this.maxCachedHeads) this.headsByAuthor.delete(this.headsByAuthor.keys().next().value!)
  }

  /**
   * Sign and store the next entry of this node's chain: seq and prev follow
   * the head, time is now, and clock is the hybrid logical clock's next value:
   * the greatest of the wall clock, one more than the clock adopted from the
   * entries held, and one more than this chain's last clock.
   * Resolves once the entry is on disk (fsync). Concurrent appends are
   * written together by one fsync, in call order.
   */
  async append (type: string, body: EntryBody): Promise<DecodedEntry> {
    if (this.signer === undefined) throw new ReadOnlyLedgerError('this ledger was opened without the node key, so it cannot append; open it with the signer')
    this.assertOpen()
    return await new Promise<DecodedEntry>((resolve, reject) => {
      this.appendQueue.push({ type, body, resolve, reject })
      if (this.appendQueue.length === 1) this.scheduleFlush()
    })
  }

  private scheduleFlush (): void {
    this.queue.run(async () => { await this.flushAppends() }).catch((err: unknown) => {
      log.error('appending failed: %s', describeError(err))
    })
  }

  private async flushAppends (): Promise<void> {
    const requests = this.appendQueue.splice(0, MAX_APPENDS_PER_WRITE)
    if (this.appendQueue.length > 0) this.scheduleFlush()
    const refusal = this.appendRefusal()
    if (refusal !== undefined) {
      for (const request of requests) request.reject(refusal)
      return
    }
    const signer = this.signer!
    const stage = this.stage()
    const made: Array<{ request: AppendRequest, entry: DecodedEntry }> = []
    for (const request of requests) {
      const head = stage.heads.get(signer.publicHex) ?? this.ownStoredHead
      if (head?.final === true) {
        request.reject(new ChainEndedError(`this node's key ended its chain at seq ${head.seq} (it revoked the key): nothing more can be written with it`))
        continue
      }
      const now = this.wallClock()
      // Hybrid logical clock; the cap only matters to a chain already at 2^53-1, which can then append no more.
      const clock = Math.min(Number.MAX_SAFE_INTEGER, Math.max(now, stage.adopted + 1, (head?.clock ?? -1) + 1))
      let entry: DecodedEntry
      try {
        entry = this.codec.create(signer, {
          seq: head === undefined ? 0 : head.seq + 1,
          prev: head?.id ?? null,
          clock,
          time: now,
          type: request.type,
          body: request.body
        })
      } catch (err) {
        request.reject(err)
        continue
      }
      this.stageChainEntry(stage, entry)
      if (tracing) trace(`created-${entry.entry.type}`, jobOfEntry(entry))
      made.push({ request, entry })
    }
    if (made.length === 0) return
    try {
      await this.commit(stage)
    } catch (err) {
      for (const { request } of made) request.reject(err)
      return
    }
    for (const { request, entry } of made) {
      if (tracing) trace(`durable-${entry.entry.type}`, jobOfEntry(entry))
      request.resolve(entry)
      this.emit('append', entry)
    }
  }

  private appendRefusal (): Error | undefined {
    if (this.selfForked) {
      const seqs = [...this.forkSeqs.get(this.author!)!].sort((a, b) => a - b)
      return new SelfForkError(`this node's key signed two different entries at seq ${seqs[0]}: another machine uses this key or this home was restored from an old copy; appending is refused, stop the other node and give this one a new key`)
    }
    const own = this.ownStoredHead
    if (own?.final === true) {
      return new ChainEndedError(`this node's key ended its chain at seq ${own.seq} (it revoked the key): nothing more can be written with it; give this node a new key (a new home)`)
    }
    if (!this.appendsAllowed) {
      return new AppendNotAllowedError('appending is not allowed yet: the node must first learn its own chain from its peers (learnOwnChain) and then call allowAppend()')
    }
    return undefined
  }

  /**
   * Check and store entries from elsewhere (gossip, sync, an import). Each is
   * decoded and its signature verified (unless `verified`: the caller has
   * checked the DecodedEntry objects it passes), then placed on its author's
   * chain: stored if it extends the head, a duplicate if held, a fork if it
   * conflicts, parked in memory if its predecessors are missing. Calls are
   * applied in call order; verification of one overlaps the writing of the
   * previous.
   */
  async ingest (entries: ReadonlyArray<string | DecodedEntry>, options: IngestOptions = {}): Promise<IngestReport> {
    this.assertOpen()
    const ticket = this.queue.reserve()
    try {
      const report: IngestReport = { accepted: [], duplicates: 0, pending: 0, rejected: [], forks: [] }
      let candidates = this.decodeAll(entries, options.verified === true, report)
      // The lookup only spares signature checks; verified entries (each gossip delivery) skip it,
      // and place() still tells a held or parked entry from a new one by its seq.
      if (options.verified !== true) candidates = await this.dropKnown(candidates, report)
      if (options.verified !== true && candidates.length > 0) {
        const ok = await verifyEntries(this.verifier, candidates.map((c) => c.decoded))
        candidates = candidates.filter((c, i) => {
          if (ok[i] === true) return true
          report.rejected.push({ index: c.index, id: c.decoded.id, reason: 'bad-signature', message: `signature of entry ${c.decoded.id} does not verify against author ${c.decoded.entry.author}` })
          return false
        })
      }
      await ticket.turn
      await this.writes.roomBehind()
      if (this.writes.failure !== undefined) await this.retryWrites()
      // Chain order per author; arrival order otherwise (sort is stable).
      candidates.sort((a, b) => a.decoded.entry.author < b.decoded.entry.author ? -1 : a.decoded.entry.author > b.decoded.entry.author ? 1 : a.decoded.entry.seq - b.decoded.entry.seq)
      const stage = this.stage()
      for (const candidate of candidates) await this.place(stage, candidate, report, options.admission)
      // Not waiting for the disk: these entries are held by the peers they came from, and sync fetches
      // whatever a crash loses; they are visible at once and written behind, and this node's next
      // append (fsync'd, written after them) makes them durable with it.
      await this.commit(stage, { sync: false })
      report.accepted = stage.accepted
      report.forks = stage.forks
      return report
    } finally {
      ticket.release()
    }
  }

  private decodeAll (entries: ReadonlyArray<string | DecodedEntry>, trusted: boolean, report: IngestReport): Candidate[] {
    const seen = new Set<string>()
    const out: Candidate[] = []
    entries.forEach((input, index) => {
      let decoded: DecodedEntry
      if (typeof input !== 'string' && trusted) {
        decoded = input
      } else {
        try {
          decoded = this.codec.decode(typeof input === 'string' ? input : input.line, { verify: false })
        } catch (err) {
          if (!(err instanceof InvalidEntryError)) throw err
          report.rejected.push({ index, reason: err.reason, message: err.message })
          return
        }
      }
      if (seen.has(decoded.id)) {
        report.duplicates++
        return
      }
      seen.add(decoded.id)
      out.push({ decoded, index })
    })
    return out
  }

  /** Skip entries already stored or pending before spending a signature check on them. */
  private async dropKnown (candidates: Candidate[], report: IngestReport): Promise<Candidate[]> {
    if (candidates.length === 0) return candidates
    await this.writes.settled()
    const found = await this.db.getMany(candidates.map((c) => keys.id(c.decoded.id)))
    return candidates.filter((c, i) => {
      if (found[i] !== undefined || this.pending.has(c.decoded.id)) {
        report.duplicates++
        return false
      }
      return true
    })
  }

  private async place (stage: Staging, { decoded, index }: Candidate, report: IngestReport, admission?: Admission): Promise<void> {
    const { author, seq, prev } = decoded.entry
    if (this.forkSeqs.has(author) || stage.forkSeqs.has(author)) {
      report.rejected.push({ index, id: decoded.id, reason: 'equivocating', message: `author ${author} has forked its chain; its entries are no longer accepted` })
      return
    }
    const ahead = this.aheadOfNow(decoded)
    if (ahead !== undefined) {
      report.rejected.push({ index, id: decoded.id, reason: 'future', message: ahead })
      return
    }
    const head = await this.storedHeadOf(stage, author)
    const headSeq = head?.seq ?? -1
    if (seq <= headSeq) {
      const onChain = await this.chainEntryAt(stage, author, seq)
      if (onChain === undefined || onChain.id === decoded.id) {
        report.duplicates++
        return
      }
      this.stageFork(stage, onChain, decoded)
      return
    }
    if (seq > headSeq + 1) {
      if (admission !== undefined && !this.admit(stage, decoded, index, report, admission)) return
      if (this.pending.park(decoded)) report.pending++
      else report.duplicates++
      return
    }
    if (prev !== (head?.id ?? null)) {
      report.rejected.push({ index, id: decoded.id, reason: 'prev-mismatch', message: `entry ${decoded.id} (author ${author}, seq ${seq}) links to ${prev ?? 'nothing'}, but the chain held here has ${head?.id ?? 'nothing'} before it` })
      return
    }
    if (head?.final === true) {
      report.rejected.push({ index, id: decoded.id, reason: 'chain-ended', message: chainEnded(decoded, head.seq) })
      return
    }
    if (head !== undefined && decoded.entry.clock <= head.clock) {
      report.rejected.push({ index, id: decoded.id, reason: 'clock-not-rising', message: notRising(decoded, head.clock) })
      return
    }
    if (admission !== undefined && !this.admit(stage, decoded, index, report, admission)) return
    this.stageChainEntry(stage, decoded)
    this.drainPending(stage, decoded)
  }

  /** Charge a new entry to its quotas; false (and a rejection reported) when it does not fit now. */
  private admit (stage: Staging, decoded: DecodedEntry, index: number, report: IngestReport, admission: Admission): boolean {
    const { author } = decoded.entry
    const refusal = stage.overQuota.has(author) ? 'author' : admission.admit(author, Buffer.byteLength(decoded.line))
    if (refusal === undefined) return true
    stage.overQuota.add(author)
    report.rejected.push({
      index,
      id: decoded.id,
      reason: 'over-quota',
      message: refusal === 'author'
        ? `author ${author} is over its quota for now; entry ${decoded.id} is not taken (a later sync brings it)`
        : `all strangers together are over their quota for now; entry ${decoded.id} by ${author} is not taken (a later sync brings it)`
    })
    return false
  }

  /** After `last` joined its chain, move any parked successors onto it. */
  private drainPending (stage: Staging, last: DecodedEntry): void {
    let previous = last
    while (true) {
      const { author, seq } = previous.entry
      const waiting = this.pending.take(author, seq + 1)
      if (waiting.length === 0) return
      const linked = waiting.filter((candidate) => candidate.entry.prev === previous.id)
      for (const stray of waiting.filter((candidate) => candidate.entry.prev !== previous.id)) {
        log('dropped entry %s (author %s seq %d): it links to %s, not to the chain held here', stray.id, author, stray.entry.seq, stray.entry.prev)
      }
      const next = linked[0]
      if (next === undefined) return
      if (this.codec.isFinal(previous.entry.type)) {
        log('dropped entry %s: %s', next.id, chainEnded(next, previous.entry.seq))
        return
      }
      if (next.entry.clock <= previous.entry.clock) {
        log('dropped entry %s: %s', next.id, notRising(next, previous.entry.clock))
        return
      }
      this.stageChainEntry(stage, next)
      if (linked.length > 1) {
        this.stageFork(stage, next, linked[1]!)
        return
      }
      previous = next
    }
  }

  private stageChainEntry (stage: Staging, decoded: DecodedEntry): void {
    const { author, seq, clock, type } = decoded.entry
    const chainKey = keys.chain(author, seq)
    stage.ops.push({ type: 'put', key: chainKey, value: decoded.line })
    stage.ops.push({ type: 'put', key: keys.id(decoded.id), value: chainKey })
    stage.ops.push({ type: 'put', key: keys.type(type, clock, decoded.id), value: '' })
    for (const ref of new Set(this.codec.refsOf(decoded.entry))) {
      if (isHex(ref, 32)) stage.ops.push({ type: 'put', key: keys.ref(ref, clock, decoded.id), value: '' })
    }
    stage.heads.set(author, { seq, id: decoded.id, clock, ...(this.codec.isFinal(type) ? { final: true } : {}) })
    stage.chainLines.set(chainKey, decoded)
    stage.maxClock = Math.max(stage.maxClock, clock)
    stage.adopted = Math.max(stage.adopted, Math.min(clock, this.wallClock() + MAX_ADOPTED_AHEAD_MS))
    stage.bytes += Buffer.byteLength(decoded.line)
    if (seq === 0) stage.authors++
    stage.count++
    stage.accepted.push(decoded)
  }

  /** Record `evidence` as conflicting with `onChain` (or with another evidence entry), if the author's cap allows. */
  private stageFork (stage: Staging, first: DecodedEntry, evidence: DecodedEntry, storeFirst = false): boolean {
    const { author, seq } = evidence.entry
    const known = new Set([...(this.forkSeqs.get(author) ?? []), ...(stage.forkSeqs.get(author) ?? [])])
    if (!known.has(seq) && known.size >= MAX_FORK_SEQS_PER_AUTHOR) return false
    for (const entry of storeFirst ? [first, evidence] : [evidence]) {
      const forkKey = keys.fork(author, seq, entry.id)
      stage.ops.push({ type: 'put', key: forkKey, value: entry.line })
      stage.ops.push({ type: 'put', key: keys.id(entry.id), value: forkKey })
      stage.bytes += Buffer.byteLength(entry.line)
    }
    addForkSeq(stage.forkSeqs, author, seq)
    stage.forks.push({ author, seq, entries: [first, evidence] })
    return true
  }

  /**
   * Store a fork proof learnt from a peer (gossip or sync). Both entries must
   * be validly signed (checked here unless `verified`), by the same author at
   * the same seq, with different ids. Returns the proof if it told this node
   * something new.
   */
  async ingestForkProof (a: DecodedEntry, b: DecodedEntry, options: { verified?: boolean, admission?: Admission } = {}): Promise<ForkProof | undefined> {
    this.assertOpen()
    checkForkPair(a, b)
    if (options.verified !== true) {
      const redecoded = [this.codec.decode(a.line), this.codec.decode(b.line)]
      a = redecoded[0]!
      b = redecoded[1]!
      checkForkPair(a, b)
    }
    return await this.queue.run(async () => {
      const { author, seq } = a.entry
      await this.writes.settled()
      const found = await this.db.getMany([keys.id(a.id), keys.id(b.id)])
      if (found[0] !== undefined && found[1] !== undefined) return undefined
      // Evidence is stored like any entry: it costs its author's quota (a fresh key can fork at will).
      const admission = options.admission
      if (admission !== undefined) {
        const bytes = Buffer.byteLength(a.line) + Buffer.byteLength(b.line)
        if (admission.peek(author, bytes) !== undefined) {
          log('fork proof of author %s seq %d not taken for now: over quota', author, seq)
          return undefined
        }
        admission.admit(author, bytes)
      }
      const stage = this.stage()
      const onChain = await this.chainEntryAt(stage, author, seq)
      let stored: boolean
      if (onChain?.id === a.id) stored = this.stageFork(stage, a, b)
      else if (onChain?.id === b.id) stored = this.stageFork(stage, b, a)
      else if (onChain !== undefined) stored = this.stageFork(stage, onChain, a) && this.stageFork(stage, onChain, b)
      else stored = this.stageFork(stage, a, b, true)
      if (!stored) return undefined
      await this.commit(stage)
      return stage.forks[0]
    })
  }

  /**
   * Write a staged change, then make it visible and announce it. `sync`
   * (the default) waits until it is on disk. Without it the change is
   * visible and announced at once and written behind (WriteBehind): a crash
   * of the node in the next milliseconds, or of the machine before the next
   * fsync, may lose it (never tear it), and any later synced write makes it
   * durable too (writes keep their order; LevelDB's log is sequential).
   */
  private async commit (stage: Staging, options: { sync: boolean } = { sync: true }): Promise<void> {
    if (stage.ops.length === 0) return
    for (const [author, head] of stage.heads) stage.ops.push({ type: 'put', key: keys.head(author), value: encodeHead(head) })
    stage.ops.push({ type: 'put', key: keys.meta('bytes'), value: String(stage.bytes) })
    stage.ops.push({ type: 'put', key: keys.meta('count'), value: String(stage.count) })
    stage.ops.push({ type: 'put', key: keys.meta('authors'), value: String(stage.authors) })
    stage.ops.push({ type: 'put', key: keys.meta('clock'), value: String(stage.maxClock) })
    if (options.sync) await this.writes.write(stage.ops, { sync: true })
    else this.writes.writeBehind(stage.ops)
    for (const [author, head] of stage.heads) this.cacheHead(author, head)
    this.entryCount = stage.count
    this.authors = stage.authors
    this.bytes = stage.bytes
    this.highestClock = stage.maxClock
    this.adopted = stage.adopted
    for (const [author, seqs] of stage.forkSeqs) {
      for (const seq of seqs) addForkSeq(this.forkSeqs, author, seq)
      const dropped = this.pending.dropAuthor(author)
      log.error('author %s equivocates (two entries at seq %s); %d of its waiting entries dropped, no more accepted', author, [...seqs].join(','), dropped)
      if (author === this.author) log.error('this node\'s own key signed two different entries: appending is refused from now on')
    }
    for (const entry of stage.accepted) {
      if (tracing) trace(`stored-${entry.entry.type}`, jobOfEntry(entry))
      this.emit('entry', entry)
    }
    for (const proof of stage.forks) this.emit('fork', proof)
  }

  private async chainEntryAt (stage: Staging, author: string, seq: number): Promise<DecodedEntry | undefined> {
    const chainKey = keys.chain(author, seq)
    const staged = stage.chainLines.get(chainKey)
    if (staged !== undefined) return staged
    await this.writes.settled()
    const line = await this.db.get(chainKey)
    return line === undefined ? undefined : decodeTrusted(line)
  }

  // ---- reading ----------------------------------------------------------

  // Reads go straight to LevelDB through LedgerQueries (queries.ts); these delegate so callers keep one handle.

  async get (id: string): Promise<DecodedEntry | undefined> {
    return await this.queries.get(id)
  }

  async has (id: string): Promise<boolean> {
    return await this.queries.has(id)
  }

  async getBySeq (author: string, seq: number): Promise<DecodedEntry | undefined> {
    return await this.queries.getBySeq(author, seq)
  }

  /** Head (last seq and its id) of every chain held, read from LevelDB (one entry per author: mind the size). */
  async heads (): Promise<Map<string, ChainHead>> {
    return await this.queries.heads()
  }

  /** Every chain's head, streamed from LevelDB in author order. */
  allHeads (): AsyncGenerator<[string, StoredHead]> {
    return this.queries.allHeads()
  }

  /** The heads of the chains whose author's key starts with `hex` (a sync bucket), streamed from LevelDB in author order. */
  headsStartingWith (hex: string): AsyncGenerator<[string, StoredHead]> {
    if (!/^[0-9a-f]{0,64}$/.test(hex)) throw new TypeError(`not lower-case hex digits: ${JSON.stringify(hex)}`)
    return this.queries.headsStartingWith(hex)
  }

  /** An author's head, read from LevelDB when it is not among the cached ones. */
  async headOf (author: string): Promise<ChainHead | undefined> {
    if (!isHex(author, 32)) return undefined
    const head = await this.storedHeadOf(this.stage(), author)
    return head === undefined ? undefined : { seq: head.seq, id: head.id }
  }

  /** This node's own chain head (always at hand). */
  ownHead (): ChainHead | undefined {
    return this.ownStoredHead === undefined ? undefined : { seq: this.ownStoredHead.seq, id: this.ownStoredHead.id }
  }

  /**
   * An author's head if it is among the recently used ones held in memory
   * (this node's own always is); undefined says "not at hand", not "none".
   */
  head (author: string): ChainHead | undefined {
    const head = author === this.author ? this.ownStoredHead : this.headsByAuthor.get(author)
    return head === undefined ? undefined : { seq: head.seq, id: head.id }
  }

  /** An author's chain entries after `afterSeq` (-1: from the start), in seq order. */
  entriesAfter (author: string, afterSeq: number, options: { limit?: number } = {}): AsyncGenerator<DecodedEntry> {
    return this.queries.entriesAfter(author, afterSeq, options)
  }

  /** Like entriesAfter, but the stored lines as they are (what sync and export send). */
  linesAfter (author: string, afterSeq: number, options: { limit?: number } = {}): AsyncGenerator<string> {
    return this.queries.linesAfter(author, afterSeq, options)
  }

  /** Entries of one type, in clock order (ties by id); `reverse`: newest first. */
  byType (type: string, options: { reverse?: boolean } = {}): AsyncGenerator<DecodedEntry> {
    return this.queries.byType(type, options)
  }

  /** Entries whose body refers to `id` (per the type rules' refs), in Lamport clock order. */
  byRef (id: string): AsyncGenerator<DecodedEntry> {
    return this.queries.byRef(id)
  }

  /** Number of chain entries held (fork evidence not counted). */
  count (): number {
    return this.entryCount
  }

  /** The greatest clock among entries stored since open, and among chain heads (-1 when empty). */
  maxClock (): number {
    return this.highestClock
  }

  /** This node's wall clock, as the store judges entries by it. */
  now (): number {
    return this.wallClock()
  }

  /** The clock this node adopted from what it holds (its next entry's clock exceeds it): see MAX_ADOPTED_AHEAD_MS. */
  adoptedClock (): number {
    return this.adopted
  }

  /** Why `decoded` is too far in the future for this node to take now (MAX_FUTURE_MS), or undefined. */
  private aheadOfNow (decoded: DecodedEntry): string | undefined {
    return futureProblem(decoded, this.wallClock())
  }

  /** The head of an author's chain with its clock (what the next entry's clock must exceed), if at hand (see head()). */
  tip (author: string): StoredHead | undefined {
    const head = author === this.author ? this.ownStoredHead : this.headsByAuthor.get(author)
    return head === undefined ? undefined : { ...head }
  }

  isEquivocating (author: string): boolean {
    return this.forkSeqs.has(author)
  }

  /** Authors with stored fork evidence, in ascending order. */
  equivocatingAuthors (): string[] {
    return [...this.forkSeqs.keys()].sort()
  }

  /** Every fork proof held: for each (author, seq), the chain's entry (if held) paired with each conflicting one. */
  async forks (): Promise<ForkProof[]> {
    return await this.queries.forks()
  }

  stats (): LedgerStats {
    return {
      entries: this.entryCount,
      bytes: this.bytes,
      authors: this.authors,
      pending: this.pending.size,
      pendingBytes: this.pending.bytes,
      equivocatingAuthors: this.forkSeqs.size
    }
  }

  /** Every entry held, one canonical line each, in export order (export.ts). */
  exportLines (): AsyncGenerator<string> {
    return this.settledThen(exportLinesOf(this.db))
  }

  // ---- lifecycle --------------------------------------------------------

  get closed (): boolean {
    return this.isClosed
  }

  /** Refuse new work, finish what is queued (appends, ingests), then close the database. */
  async close (): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    await this.queue.idle()
    this.pending.clear()
    await this.writes.flush().catch((err: unknown) => {
      log.error('entries from peers could not be written before closing (sync will fetch them again): %s', describeError(err))
    })
    await this.db.close()
  }

  /**
   * A failed write of peers' entries (a full disk?) is tried again, at most
   * once every WRITE_RETRY_MS for them (each gossip delivery would otherwise
   * reopen LevelDB); until it succeeds, no more are taken. An own append
   * always tries.
   */
  private async retryWrites (): Promise<void> {
    try {
      if (this.writes.sinceFailure() < WRITE_RETRY_MS) throw this.writes.failure
      await this.writes.flush()
    } catch (err) {
      throw new LedgerWriteError(`cannot write to the ledger at ${this.path}: ${describeError(err)}; entries from peers are refused until it can (is the disk full?), and nothing already taken is lost while the node runs`, { cause: err })
    }
  }

  /** Reads `source` once every write made so far was attempted. */
  private async * settledThen<T> (source: AsyncGenerator<T>): AsyncGenerator<T> {
    await this.writes.settled()
    yield * source
  }

  private assertOpen (): void {
    if (this.isClosed) throw new LedgerClosedError(`the ledger at ${this.path} is closed; open it again to use it`)
  }
}

export interface IngestOptions {
  /** The caller checked the signatures of the DecodedEntry objects it passes. */
  verified?: boolean
  /**
   * Charge each entry that would be stored (or held for its predecessors) to
   * these quotas, after its signature checked out; one that does not fit is
   * refused with `over-quota`, and so are its author's later entries in this
   * call. Sync passes the node's quotas; gossip charges at validation.
   */
  admission?: Admission
}

interface Candidate {
  decoded: DecodedEntry
  /** Position in the ingest() input. */
  index: number
}

function chainEnded (decoded: DecodedEntry, finalSeq: number): string {
  return `entry ${decoded.id} (author ${decoded.entry.author}, seq ${decoded.entry.seq}) comes after the author ended its chain at seq ${finalSeq} (it revoked its key): nothing after that is taken`
}

function notRising (decoded: DecodedEntry, previous: number): string {
  return `entry ${decoded.id} (author ${decoded.entry.author}, seq ${decoded.entry.seq}) has clock ${decoded.entry.clock}, not above its predecessor's ${previous}: a chain's clock must rise`
}

/**
 * Why an entry is too far in the future to be taken at `now` (its `time` or
 * its `clock` more than MAX_FUTURE_MS ahead), or undefined. Used at ingest
 * and by the gossip validator; a refusal is for now only.
 */
export function futureProblem (decoded: DecodedEntry, now: number): string | undefined {
  const limit = now + MAX_FUTURE_MS
  const { time, clock } = decoded.entry
  if (time > limit) return `entry ${decoded.id} is dated ${time}, more than ${MAX_FUTURE_MS / 60_000} minutes ahead of this node's clock (${now}); it is refused until then`
  if (clock > limit) return `entry ${decoded.id} has clock ${clock}, more than ${MAX_FUTURE_MS / 60_000} minutes ahead of this node's clock (${now}); it is refused until then`
  return undefined
}

function addForkSeq (map: Map<string, Set<number>>, author: string, seq: number): void {
  let seqs = map.get(author)
  if (seqs === undefined) {
    seqs = new Set()
    map.set(author, seqs)
  }
  seqs.add(seq)
}
