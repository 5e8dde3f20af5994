import type { DecodedEntry } from '../../ledger/entry.js'
import { foldJob } from '../state.js'
import type { TrustPolicy } from '../trust.js'
import type { JobView } from '../view.js'

/** Entries that refer to a job we have not seen yet are kept until it arrives, up to this many. */
const MAX_ORPHANS = 50_000

interface IndexedJob {
  job: DecodedEntry
  related: Map<string, DecodedEntry>
  view?: JobView
}

/**
 * Every job the node knows, with the entries that refer to it, and each
 * job's folded view cached until one of its entries changes. The fold is
 * pure, so the cache only saves work: a view is always foldJob of what is here.
 */
export class JobIndex {
  private readonly jobs = new Map<string, IndexedJob>()
  private readonly orphans = new Map<string, DecodedEntry[]>()
  private orphanCount = 0
  private newestFirst: string[] | undefined
  /**
   * Jobs that may still need this node's attention: every job that is new or
   * got a new entry since the last `activeViews` pass, and those it kept.
   * Planning walks these instead of the whole history.
   */
  private readonly active = new Set<string>()
  private policy: TrustPolicy

  constructor (policy: TrustPolicy) {
    this.policy = policy
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

  /** Index an entry; returns the id of the job whose view changed, if any. */
  add (entry: DecodedEntry): string | undefined {
    if (entry.entry.type === 'job') {
      if (this.jobs.has(entry.id)) return undefined
      const indexed: IndexedJob = { job: entry, related: new Map() }
      for (const orphan of this.orphans.get(entry.id) ?? []) indexed.related.set(orphan.id, orphan)
      this.orphanCount -= this.orphans.get(entry.id)?.length ?? 0
      this.orphans.delete(entry.id)
      this.jobs.set(entry.id, indexed)
      this.active.add(entry.id)
      this.newestFirst = undefined
      return entry.id
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
    indexed.view = undefined
    this.active.add(jobId)
    return jobId
  }

  has (id: string): boolean {
    return this.jobs.has(id)
  }

  get size (): number {
    return this.jobs.size
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

  private keepOrphan (jobId: string, entry: DecodedEntry): void {
    if (this.orphanCount >= MAX_ORPHANS) {
      // Drop the oldest waiting job's entries: the store still has them, and a
      // restart re-reads everything in order.
      const oldest = this.orphans.keys().next().value
      if (oldest !== undefined) {
        this.orphanCount -= this.orphans.get(oldest)?.length ?? 0
        this.orphans.delete(oldest)
      }
    }
    const list = this.orphans.get(jobId)
    if (list === undefined) this.orphans.set(jobId, [entry])
    else if (!list.some((e) => e.id === entry.id)) list.push(entry)
    else return
    this.orphanCount++
  }
}
