import { QuotaBucket } from './bucket.js'
import { ALL_STRANGERS_QUOTA, MAX_TRACKED_BUCKETS, MEMBER_QUOTA, RELAY_QUOTA, STRANGER_QUOTA, type Quota } from './constants.js'

/** Whether the mesh counts an author as one of its members. */
export type Standing = 'member' | 'stranger'

/**
 * Who is a member, asked for every entry that arrives. The ledger knows no
 * membership: the node injects this (membership is computed from the log by
 * a higher layer); until it does, everyone is a stranger.
 */
export type StandingFn = (author: string) => Standing

export const EVERYONE_A_STRANGER: StandingFn = () => 'stranger'

/** Which quota an entry did not fit. */
export type QuotaRefusal = 'author' | 'strangers'

export interface AdmissionQuotas {
  member: Quota
  stranger: Quota
  allStrangers: Quota
  relay: Quota
}

export interface AdmissionInit {
  /** Default: everyone is a stranger. */
  standing?: StandingFn
  /** This node's own author: its entries are never charged. */
  self?: string
  /** ms since the epoch (default Date.now). */
  now?: () => number
  /** Override quotas (tests, benchmarks); default the constants. */
  quotas?: Partial<AdmissionQuotas>
  /** Buckets kept per author and per relay (default MAX_TRACKED_BUCKETS). */
  maxTrackedBuckets?: number
}

export interface AdmissionStats {
  /** Entries charged and let in. */
  admitted: number
  /** Entries refused because their author's quota was spent. */
  refusedAuthor: number
  /** Strangers' entries refused because all strangers' quota was spent. */
  refusedStrangers: number
  /** Deliveries past what an honest relay can forward (each one penalised). */
  relayOverruns: number
  /** Buckets held in memory. */
  trackedAuthors: number
  trackedRelays: number
}

/** Buckets by key, bounded: full buckets are forgotten first, then the least recently used. */
class BucketMap {
  private readonly buckets = new Map<string, QuotaBucket>()
  private readonly max: number

  constructor (max: number) {
    this.max = max
  }

  get size (): number {
    return this.buckets.size
  }

  get (key: string, quota: Quota, now: number): QuotaBucket {
    let bucket = this.buckets.get(key)
    if (bucket !== undefined && bucket.quota !== quota) bucket = undefined
    if (bucket === undefined) {
      if (this.buckets.size >= this.max) this.shrink(now)
      bucket = new QuotaBucket(quota, now)
    } else {
      this.buckets.delete(key)
    }
    this.buckets.set(key, bucket)
    return bucket
  }

  private shrink (now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(key)
    // Still too many: drop the least recently used tenth.
    const excess = this.buckets.size - Math.floor(this.max * 0.9)
    if (excess <= 0) return
    let dropped = 0
    for (const key of this.buckets.keys()) {
      if (dropped++ >= excess) break
      this.buckets.delete(key)
    }
  }
}

/**
 * The ledger's quotas at the door: per author (larger for members), for all
 * strangers together, and per gossip relay. Shared by gossip validation and
 * sync, so an entry costs the same whichever way it comes. Bounded in memory.
 */
export class Admission {
  readonly quotas: AdmissionQuotas
  private readonly standing: StandingFn
  private readonly self: string | undefined
  private readonly now: () => number
  private readonly authors: BucketMap
  private readonly relays: BucketMap
  private readonly strangers: QuotaBucket
  private readonly counters = { admitted: 0, refusedAuthor: 0, refusedStrangers: 0, relayOverruns: 0 }

  constructor (init: AdmissionInit = {}) {
    this.quotas = {
      member: init.quotas?.member ?? MEMBER_QUOTA,
      stranger: init.quotas?.stranger ?? STRANGER_QUOTA,
      allStrangers: init.quotas?.allStrangers ?? ALL_STRANGERS_QUOTA,
      relay: init.quotas?.relay ?? RELAY_QUOTA
    }
    this.standing = init.standing ?? EVERYONE_A_STRANGER
    this.self = init.self
    this.now = init.now ?? Date.now
    const max = init.maxTrackedBuckets ?? MAX_TRACKED_BUCKETS
    this.authors = new BucketMap(max)
    this.relays = new BucketMap(max)
    this.strangers = new QuotaBucket(this.quotas.allStrangers, this.now())
  }

  standingOf (author: string): Standing {
    if (author === this.self) return 'member'
    try {
      return this.standing(author) === 'member' ? 'member' : 'stranger'
    } catch {
      return 'stranger'
    }
  }

  /** The quota this node's own entries are held to by its peers (as the standing hook sees it): it publishes no faster. */
  ownQuota (): Quota {
    if (this.self === undefined) return this.quotas.stranger
    try {
      return this.standing(this.self) === 'member' ? this.quotas.member : this.quotas.stranger
    } catch {
      return this.quotas.stranger
    }
  }

  /** The quota an author's entries are held to. */
  quotaOf (author: string): Quota {
    return this.standingOf(author) === 'member' ? this.quotas.member : this.quotas.stranger
  }

  /** Which quota an entry by `author` of `bytes` would not fit now, or undefined when it fits. Takes nothing. */
  peek (author: string, bytes: number): QuotaRefusal | undefined {
    if (author === this.self) return undefined
    const now = this.now()
    const stranger = this.standingOf(author) === 'stranger'
    if (!this.authors.get(author, stranger ? this.quotas.stranger : this.quotas.member, now).fits(bytes, now)) return 'author'
    if (stranger && !this.strangers.fits(bytes, now)) return 'strangers'
    return undefined
  }

  /** Charge an entry: undefined (and taken from every bucket that applies) when it fits, else which quota it did not fit (nothing taken). */
  admit (author: string, bytes: number): QuotaRefusal | undefined {
    if (author === this.self) return undefined
    const refusal = this.peek(author, bytes)
    if (refusal === 'author') this.counters.refusedAuthor++
    if (refusal === 'strangers') this.counters.refusedStrangers++
    if (refusal !== undefined) return refusal
    const now = this.now()
    const stranger = this.standingOf(author) === 'stranger'
    this.authors.get(author, stranger ? this.quotas.stranger : this.quotas.member, now).take(bytes, now)
    if (stranger) this.strangers.take(bytes, now)
    this.counters.admitted++
    return undefined
  }

  /**
   * Count a gossip delivery: `relay` (the peer that handed us the message,
   * as an author key) delivered an entry by `author` of `bytes`. Members'
   * entries are not counted (an honest relay forwards any number of them).
   * False when the relay has now delivered more strangers' entries than an
   * honest relay can have accepted (RELAY_QUOTA): it is not one.
   */
  delivered (relay: string, author: string, bytes: number): boolean {
    if (this.standingOf(author) === 'member') return true
    const now = this.now()
    const ok = this.relays.get(relay, this.quotas.relay, now).charge(bytes, now)
    if (!ok) this.counters.relayOverruns++
    return ok
  }

  stats (): AdmissionStats {
    return { ...this.counters, trackedAuthors: this.authors.size, trackedRelays: this.relays.size }
  }
}
