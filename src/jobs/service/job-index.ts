import type { DecodedEntry } from '../../ledger/entry.js'
import { MAX_INDEX_BYTES, MAX_INDEX_JOBS, MAX_ORPHAN_BYTES, MAX_ORPHANS } from '../constants.js'
import { foldJob } from '../state.js'
import type { TrustPolicy } from '../trust.js'
import type { JobView } from '../view.js'

interface IndexedJob {
  job: DecodedEntry
  related: Map<string, DecodedEntry>
  view?: JobView
  /** Bytes of the lines of the job and its related entries. */
  bytes: number
}

export interface JobIndexLimits {
  /** Bytes of entry lines held (jobs and the entries naming them). */
  maxBytes: number
  maxJobs: number
  /** Entries waiting for a job not held. */
  maxOrphans: number
  maxOrphanBytes: number
}

export interface JobIndexOptions {
  limits?: Partial<JobIndexLimits>
  /**
   * Whether a job's submitter is a member: when memory is full, strangers'
   * undecided jobs leave before members' (decided jobs leave first of all).
   * Default: everyone is a stranger.
   */
  standing?: (author: string) => 'member' | 'stranger'
}

export interface JobIndexStats {
  jobs: number
  bytes: number
  orphans: number
  orphanBytes: number
  /** Jobs dropped from memory since start (still in the log). */
  evicted: number
}

/**
 * The jobs the node holds in memory, with the entries that refer to them,
 * and each job's folded view cached until one of its entries changes. The
 * fold is pure, so the cache only saves work: a view is always foldJob of
 * what is here.
 *
 * Bounded (MAX_INDEX_BYTES, MAX_INDEX_JOBS): past the bound, jobs leave
 * memory — decided ones first, then strangers' undecided ones, then members'
 * — oldest first (by clock). What leaves stays in the log; the service reads
 * it back on request. A job that left is not planned any more.
 */
export class JobIndex {
  private readonly jobs = new Map<string, IndexedJob>()
  private readonly orphans = new Map<string, DecodedEntry[]>()
  private readonly limits: JobIndexLimits
  private readonly standing: (author: string) => 'member' | 'stranger'
  private orphanCount = 0
  private orphanBytes = 0
  private bytes = 0
  private evicted = 0
  private newestFirst: string[] | undefined
  /**
   * Jobs that may still need this node's attention: every job that is new or
   * got a new entry since the last `activeViews` pass, and those it kept.
   * Planning walks these instead of the whole history.
   */
  private readonly active = new Set<string>()
  private policy: TrustPolicy

  constructor (policy: TrustPolicy, options: JobIndexOptions = {}) {
    this.policy = policy
    this.limits = {
      maxBytes: options.limits?.maxBytes ?? MAX_INDEX_BYTES,
      maxJobs: options.limits?.maxJobs ?? MAX_INDEX_JOBS,
      maxOrphans: options.limits?.maxOrphans ?? MAX_ORPHANS,
      maxOrphanBytes: options.limits?.maxOrphanBytes ?? MAX_ORPHAN_BYTES
    }
    this.standing = options.standing ?? (() => 'stranger')
  }

  /** Change whom the node believes (e.g. a key forked): every view is refolded. */
  setPolicy (policy: TrustPolicy): void {
    this.policy = policy
    for (const [id, indexed] of this.jobs) {
      indexed.view = undefined
      // Whom we believe decides verdicts: a decided job may be open again.
      this.active.add(id)
    }
  }

  getPolicy (): TrustPolicy {
    return this.policy
  }

  /** At its bounds: a node loading its history stops here (the newest first). */
  get full (): boolean {
    return this.bytes >= this.limits.maxBytes || this.jobs.size >= this.limits.maxJobs
  }

  /** Index an entry; returns the id of the job whose view changed, if any. */
  add (entry: DecodedEntry): string | undefined {
    if (entry.entry.type === 'job') {
      if (this.jobs.has(entry.id)) return undefined
      const indexed: IndexedJob = { job: entry, related: new Map(), bytes: entry.line.length }
      for (const orphan of this.orphans.get(entry.id) ?? []) {
        indexed.related.set(orphan.id, orphan)
        indexed.bytes += orphan.line.length
        this.orphanBytes -= orphan.line.length
      }
      this.orphanCount -= this.orphans.get(entry.id)?.length ?? 0
      this.orphans.delete(entry.id)
      this.jobs.set(entry.id, indexed)
      this.bytes += indexed.bytes
      this.active.add(entry.id)
      this.newestFirst = undefined
      this.trim()
      return this.jobs.has(entry.id) ? entry.id : undefined
    }
    const jobId = (entry.entry.body as { job?: unknown }).job
    if (typeof jobId !== 'string') return undefined
    const indexed = this.jobs.get(jobId)
    if (indexed === undefined) {
      this.keepOrphan(jobId, entry)
      return undefined
    }
    if (indexed.related.has(entry.id)) return undefined
    indexed.related.set(entry.id, entry)
    indexed.bytes += entry.line.length
    this.bytes += entry.line.length
    indexed.view = undefined
    this.active.add(jobId)
    this.trim()
    return this.jobs.has(jobId) ? jobId : undefined
  }

  has (id: string): boolean {
    return this.jobs.has(id)
  }

  get size (): number {
    return this.jobs.size
  }

  stats (): JobIndexStats {
    return { jobs: this.jobs.size, bytes: this.bytes, orphans: this.orphanCount, orphanBytes: this.orphanBytes, evicted: this.evicted }
  }

  view (id: string): JobView | undefined {
    const indexed = this.jobs.get(id)
    if (indexed === undefined) return undefined
    indexed.view ??= foldJob(indexed.job, indexed.related.values(), this.policy)
    return indexed.view
  }

  /** The job entry and every entry referring to it (the raw signed evidence). */
  entries (id: string): DecodedEntry[] {
    const indexed = this.jobs.get(id)
    if (indexed === undefined) return []
    return [indexed.job, ...indexed.related.values()]
  }

  /** Job ids, newest first (Lamport clock, then the submitter's time, then id). */
  ids (): string[] {
    if (this.newestFirst === undefined) {
      this.newestFirst = [...this.jobs.values()]
        .sort((a, b) => b.job.entry.clock - a.job.entry.clock || b.job.entry.time - a.job.entry.time || (a.job.id < b.job.id ? -1 : 1))
        .map((j) => j.job.id)
    }
    return this.newestFirst
  }

  views (): JobView[] {
    return this.ids().map((id) => this.view(id)!)
  }

  /**
   * The views of active jobs that `keep` wants; the others leave the active
   * set until an entry about them arrives. Cost: the active jobs, not the
   * history.
   */
  activeViews (keep: (view: JobView) => boolean): JobView[] {
    const kept: JobView[] = []
    for (const id of this.active) {
      const view = this.view(id)
      if (view !== undefined && keep(view)) kept.push(view)
      else this.active.delete(id)
    }
    return kept
  }

  /** Over a bound: drop jobs down to 90 % of it, in one pass (so a burst does not sort the index per entry). */
  private trim (): void {
    if (this.bytes <= this.limits.maxBytes && this.jobs.size <= this.limits.maxJobs) return
    const targetBytes = Math.floor(this.limits.maxBytes * 0.9)
    const targetJobs = Math.floor(this.limits.maxJobs * 0.9)
    const oldestFirst = [...this.ids()].reverse()
    const rank = (id: string): number => {
      const view = this.view(id)!
      if (view.verdict !== 'pending' && view.verdict !== 'unmatched') return 0
      return this.standing(view.submitter) === 'member' ? 2 : 1
    }
    for (const tier of [0, 1, 2]) {
      for (const id of oldestFirst) {
        if (this.bytes <= targetBytes && this.jobs.size <= targetJobs) return
        if (!this.jobs.has(id) || rank(id) !== tier) continue
        this.drop(id)
      }
    }
  }

  private drop (id: string): void {
    const indexed = this.jobs.get(id)
    if (indexed === undefined) return
    this.jobs.delete(id)
    this.active.delete(id)
    this.bytes -= indexed.bytes
    this.evicted++
    this.newestFirst = undefined
  }

  private keepOrphan (jobId: string, entry: DecodedEntry): void {
    const list = this.orphans.get(jobId)
    if (list?.some((e) => e.id === entry.id) === true) return
    const size = entry.line.length
    while (this.orphans.size > 0 && (this.orphanCount >= this.limits.maxOrphans || this.orphanBytes + size > this.limits.maxOrphanBytes)) {
      // Drop the oldest waiting job's entries: the store still has them, and a restart re-reads what matters.
      const oldest = this.orphans.keys().next().value!
      for (const dropped of this.orphans.get(oldest) ?? []) this.orphanBytes -= dropped.line.length
      this.orphanCount -= this.orphans.get(oldest)?.length ?? 0
      this.orphans.delete(oldest)
    }
    if (size > this.limits.maxOrphanBytes) return
    if (list === undefined || !this.orphans.has(jobId)) this.orphans.set(jobId, [entry])
    else list.push(entry)
    this.orphanCount++
    this.orphanBytes += size
  }
}
