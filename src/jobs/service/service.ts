import { NotSubmitterError, JobNotFoundError, SourceNotFoundError } from '../errors.js'
import { MAX_SOURCE_BYTES } from '../../archive/index.js'
import { admit, type AdmissionPolicy, type Executor } from '../../sandbox/index.js'
import type { DecodedEntry } from '../../ledger/entry.js'
import { InvalidEntryError } from '../../ledger/errors.js'
import { BuildhausError, describeError } from '../../util/errors.js'
import { TypedEvents } from '../../util/events.js'
import { componentLogger } from '../../util/logger.js'
import { trace, tracing } from '../../util/trace.js'
import type { JobBody, ResultBody } from '../bodies.js'
import { CLAIM_LEASE_MS, MAX_ACTIVITY_AUTHORS } from '../constants.js'
import { planClaims, slotState, wantsBuilders, explainUnmatched, type Admission, type Member } from '../scheduler.js'
import { RankCache } from '../rendezvous.js'
import { slotKey } from '../selector.js'
import { jobBodyFromSpec, type JobSpec, type SpecOverrides } from '../spec.js'
import { withLiveness } from '../state.js'
import { provenanceSigningInput } from '../provenance.js'
import { countingOf, type Counting, type TrustPolicy } from '../trust.js'
import type { JobView } from '../view.js'
import { DiagnosisScheduler } from './diagnosis-scheduler.js'
import { foldJob } from '../state.js'
import { JobIndex, type JobIndexLimits, type JobIndexStats } from './job-index.js'
import { remember } from './remember.js'
import { SourcePins } from './source-pins.js'
import { WatchIndex } from '../watches.js'
import type { BlobFetcher, JobBlobs, JobEnvironments, JobLedger, Membership } from './ports.js'
import { errorInstead, publishableResult } from './publishable.js'
import { requestedLimits, runSlot } from './runner.js'

const log = componentLogger('jobs:service')

/** How long the live members' load the API shows (queued: all N matching nodes are busy) may be reused. */
const LOADED_MEMBERS_TTL_MS = 250

/** The longest stop() waits for runs, diagnoses and workspace removals to end. */
const STOP_TIMEOUT_MS = 10_000

/** The types that name a job and so belong to its fold. */
const RELATED_TYPES: ReadonlySet<string> = new Set(['claim', 'result', 'cancel', 'diagnosis'])
/** The types of watches (folded beside the jobs: a watch's jobs and duplicates need both). */
const WATCH_TYPES = ['watch', 'unwatch', 'poll'] as const

export interface JobServiceOptions {
  self: { author: string, platforms: string[], slots: number }
  ledger: JobLedger
  blobs: JobBlobs
  fetcher: BlobFetcher
  membership: Membership
  /** Undefined when this node cannot build (no sandbox): it still submits, watches and serves. */
  executor: Executor | undefined
  /** The environments this node offers; undefined: it builds on its host only. */
  environments?: JobEnvironments
  policy: AdmissionPolicy
  trust: TrustPolicy
  /** Where sandbox workspaces go. */
  workRoot: string
  leaseMs?: number
  /** How often to re-plan without any new entry (leases lapse, members leave). */
  tickMs?: number
  /** Who is a member: when memory is full, strangers' undecided jobs leave it before members' (see JobIndex). */
  standing?: (author: string) => 'member' | 'stranger'
  /** Bounds of the in-memory index (default: MAX_INDEX_BYTES, MAX_INDEX_JOBS, …). */
  indexLimits?: Partial<JobIndexLimits>
  /** Signs with the node's key: a pass with artifacts carries the builder's signature of its provenance statement. */
  sign?: (message: Uint8Array) => Uint8Array
}

/** Counters for /metrics and the dashboard. */
export interface JobServiceStats {
  running: number
  claims: number
  runs: Record<string, number>
  runSeconds: { count: number, sum: number }
  diagnoses: number
  /** Runs stopped because another node's earlier claim filled the slot. */
  yielded: number
}

export type JobServiceEvents = {
  /** A job's view changed (a new job, claim, result, cancel or diagnosis). */
  job: CustomEvent<{ id: string }>
  /** A live line of a build this node is running. */
  log: CustomEvent<{ job: string, platform: string, text: string }>
  /** A watch changed: added, removed, a poll report, a job for one of its releases. */
  watch: CustomEvent<{ id: string }>
  /** A build of this node started (`running: true`) or ended: live log followers open and close its slot. */
  run: CustomEvent<{ job: string, platform: string, running: boolean }>
}

interface Running {
  job: string
  platform: string
  controller: AbortController
  started: number
  /** Stopped because an earlier claim took the slot. */
  yielded?: boolean
}

/** Not cancelled, and some platform still wants builders (see wantsBuilders). */
function isOpen (view: JobView): boolean {
  return view.platforms.some((p) => wantsBuilders(view, p))
}

function lastActiveOf (map: ReadonlyMap<string, number>, author: string): { lastActive?: number } {
  const time = map.get(author)
  return time === undefined ? {} : { lastActive: time }
}

/**
 * The node's side of jobs: keeps every job's folded view current as entries
 * arrive, decides (alone, like every other node) which slots to claim, runs
 * them in the sandbox, and publishes claims, results, refusals and mismatch
 * diagnoses. No coordinator: every decision is a function of the log and
 * live presence.
 */
export class JobService extends TypedEvents<JobServiceEvents> {
  private readonly options: JobServiceOptions
  private readonly index: JobIndex
  /** Every watch, its releases' jobs, and which jobs are duplicates of a race. */
  readonly watches: WatchIndex
  private readonly running = new Map<string, Running>()
  /** Slots we have decided to claim and are writing the claim for. */
  private readonly claiming = new Set<string>()
  private readonly refusing = new Set<string>()
  private readonly diagnoses: DiagnosisScheduler
  /** claimAndRun() of every slot being claimed or run, until it has ended. */
  private readonly runs = new Set<Promise<void>>()
  /** Workspaces still being removed after their runs. */
  private readonly cleanups = new Set<Promise<void>>()
  /** Per author, the time of its latest claim or result. */
  private readonly lastActive = new Map<string, number>()
  /** The sources of this node's own undecided jobs and of submits under way, kept pinned. */
  private readonly sourcePins: SourcePins
  /** Submits so far: names each one under way for sourcePins. */
  private submits = 0
  /** Each open slot's rendezvous order, kept across plans (docs/SCALING.md, item 4). */
  private readonly ranking = new RankCache()
  /** The last loadedMembers(), and when (ms since the epoch). */
  private loaded: { at: number, members: Member[] } | undefined
  private readonly stats: JobServiceStats = { running: 0, claims: 0, runs: {}, runSeconds: { count: 0, sum: 0 }, diagnoses: 0, yielded: 0 }
  private timer: ReturnType<typeof setInterval> | undefined
  private planQueued = false
  private started = false
  /** When this run of the service started: own claims older than this are from before a restart. */
  private startedAt = 0
  private readonly onEntry = (evt: Event): void => { this.handleEntry((evt as CustomEvent<DecodedEntry>).detail) }

  constructor (options: JobServiceOptions) {
    super()
    this.options = options
    this.index = new JobIndex(options.trust, {
      ...(options.standing !== undefined ? { standing: options.standing } : {}),
      ...(options.indexLimits !== undefined ? { limits: options.indexLimits } : {})
    })
    this.watches = new WatchIndex(options.trust)
    this.sourcePins = new SourcePins(options.blobs, (source, err) => { log.error('could not unpin the source %s: %s', source, describeError(err)) })
    this.diagnoses = new DiagnosisScheduler({
      self: options.self.author,
      blobs: options.blobs,
      fetcher: options.fetcher,
      ledger: options.ledger,
      onPublished: () => { this.stats.diagnoses++ }
    })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.options.ledger.addEventListener('entry', this.onEntry)
    for (const type of WATCH_TYPES) {
      for await (const entry of this.options.ledger.byType(type)) this.watches.add(entry)
    }
    // Watches need every job a release made; the index holds the newest jobs, each with what
    // names it, until it is full: older ones stay in the log.
    for await (const job of this.options.ledger.byType('job', { reverse: true })) {
      this.watches.add(job)
      if (this.index.full) continue
      this.index.add(job)
      for await (const entry of this.options.ledger.byRef(job.id)) {
        if (!RELATED_TYPES.has(entry.entry.type)) continue
        this.noteActivity(entry)
        this.index.add(entry)
      }
    }
    this.holdOwnSources()
    this.started = true
    this.startedAt = Date.now()
    this.timer = setInterval(() => { this.schedulePlan() }, this.options.tickMs ?? 1_000)
    this.timer.unref?.()
    this.advertise(true)
    this.schedulePlan()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    clearInterval(this.timer)
    this.options.ledger.removeEventListener('entry', this.onEntry)
    for (const run of this.running.values()) run.controller.abort(new BuildhausError('the node is stopping'))
    // Each run ends soon after its abort (its claim written, its result published or not) and
    // registers its workspace's removal before it does: wait for the runs, then the removals.
    const ended = Promise.allSettled([...this.runs, this.diagnoses.stop()])
      .then(async () => await Promise.allSettled([...this.cleanups]))
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS) })
    await Promise.race([ended, deadline])
    clearTimeout(timer)
  }

  /** Every job, newest first, with live presence's `unmatched` overlay. */
  list (): JobView[] {
    const now = Date.now()
    return this.index.views().map((view) => this.overlay(view, now))
  }

  get (id: string): JobView | undefined {
    const view = this.index.view(id)
    return view === undefined ? undefined : this.overlay(view, Date.now())
  }

  /** The job entry and every entry referring to it, as signed (jobs held in memory). */
  entries (id: string): DecodedEntry[] {
    return this.index.entries(id)
  }

  /**
   * A job's view, from memory or, for a job that left it (see JobIndex), read
   * back from the log and folded (without liveness: it is not planned).
   */
  async load (id: string): Promise<JobView | undefined> {
    const held = this.get(id)
    if (held !== undefined) return held
    const entries = await this.loadEntries(id)
    if (entries.length === 0) return undefined
    return foldJob(entries[0]!, entries.slice(1), this.index.getPolicy())
  }

  /** entries(), or read back from the log for a job not held in memory. */
  async loadEntries (id: string): Promise<DecodedEntry[]> {
    const held = this.index.entries(id)
    if (held.length > 0) return held
    const job = await this.options.ledger.get(id)
    if (job === undefined || job.entry.type !== 'job') return []
    const related: DecodedEntry[] = []
    for await (const entry of this.options.ledger.byRef(id)) if (RELATED_TYPES.has(entry.entry.type)) related.push(entry)
    return [job, ...related]
  }

  /** How much the in-memory index holds (for /metrics). */
  indexStats (): JobIndexStats {
    return this.index.stats()
  }

  /** Every folded view, without the liveness overlay (what an offline audit computes). */
  foldedViews (): JobView[] {
    return this.index.views()
  }

  trustPolicy (): TrustPolicy {
    return this.index.getPolicy()
  }

  /** Believe differently (e.g. exclude a forked key): every view is refolded. */
  setTrustPolicy (policy: TrustPolicy): void {
    this.index.setPolicy(policy)
    this.watches.setPolicy(policy)
    for (const id of this.index.ids()) this.emit('job', { id })
  }

  getStats (): JobServiceStats {
    return { ...this.stats, running: this.running.size, runs: { ...this.stats.runs }, runSeconds: { ...this.stats.runSeconds } }
  }

  runningSlots (): string[] {
    return [...this.running.keys()]
  }

  /**
   * Publish a job for a source already in the local blob store. The submitter's
   * node pins the source until the job is decided, so builders can fetch it.
   */
  async submit (input: { spec: JobSpec, overrides?: SpecOverrides, source: { hash: string, size: number } }): Promise<JobView> {
    const overrides: SpecOverrides = { ...input.overrides }
    // A spec that names no platform means "the platform I am on".
    if (input.spec.platforms === undefined && overrides.platforms === undefined) overrides.platforms = [this.options.self.platforms[0]!]
    const body = jobBodyFromSpec(input.spec, overrides, input.source)
    if (!(await this.options.blobs.has(body.source))) {
      throw new SourceNotFoundError(`the source ${body.source} is not in this node's blob store; upload it first (POST /api/blobs), then submit again`)
    }
    const entry = await this.appendJob(body)
    this.index.add(entry)
    return this.get(entry.id)!
  }

  /** Append a job entry of this node with its source pinned: kept from before the entry exists until the job is decided. */
  private async appendJob (body: JobBody): Promise<DecodedEntry> {
    const submitting = `submit ${++this.submits}`
    try {
      await this.sourcePins.hold(body.source, submitting).catch((err: unknown) => {
        // Evicted since the caller looked: nothing is written, and the user is told what to do.
        if ((err as Error).name === 'BlobNotFoundError') throw new SourceNotFoundError(`the source ${body.source} is no longer in this node's blob store; upload it again (POST /api/blobs), then submit again`)
        throw err
      })
      const entry = await this.options.ledger.append('job', body)
      // Held for the job from now until handleEntry sees it decided (it saw the job entry itself already).
      const view = this.index.view(entry.id)
      if (view === undefined || view.verdict === 'pending') void this.sourcePins.hold(body.source, entry.id).catch(() => {})
      return entry
    } finally {
      this.sourcePins.release(body.source, submitting)
    }
  }

  /** After a restart: the sources of this node's undecided jobs are pinned again (sources are pinned in memory only, see SourcePins). */
  private holdOwnSources (): void {
    const self = this.options.self.author
    for (const id of this.index.ids()) {
      if (this.index.entries(id)[0]?.entry.author !== self) continue
      const view = this.index.view(id)
      if (view?.verdict === 'pending') void this.sourcePins.hold(view.source, id).catch(() => {})
    }
  }

  /**
   * Publish a job body made elsewhere (a watch's job for a release, with its
   * trigger and upstream): the source must be in the local store; it is pinned
   * until the job is decided, as for submit.
   */
  async submitBody (body: JobBody): Promise<JobView> {
    if (!(await this.options.blobs.has(body.source))) throw new SourceNotFoundError(`the source ${body.source} is not in this node's blob store`)
    const entry = await this.appendJob(body)
    this.handleEntry(entry)
    return this.get(entry.id)!
  }

  /** Submit the same job again (a new job entry with the same source and steps). */
  async rerun (id: string): Promise<JobView> {
    const view = this.index.view(id)
    if (view === undefined) throw new JobNotFoundError(`this node knows no job ${id}; list jobs with GET /api/jobs`)
    if (!(await this.options.blobs.has(view.source))) {
      await this.options.fetcher.fetch(view.source, { fromAuthors: this.sourceHolders(view), maxBytes: MAX_SOURCE_BYTES, signal: AbortSignal.timeout(30_000) })
    }
    const entry = await this.appendJob(view.spec)
    this.index.add(entry)
    return this.get(entry.id)!
  }

  /** Cancel a job: only its submitter's cancel counts, so only the submitting node may. */
  async cancel (id: string, reason?: string): Promise<JobView> {
    const view = this.index.view(id)
    if (view === undefined) throw new JobNotFoundError(`this node knows no job ${id}; list jobs with GET /api/jobs`)
    if (view.submitter !== this.options.self.author) {
      throw new NotSubmitterError(`only the node that submitted job ${id} can cancel it (its key is ${view.submitter.slice(0, 16)}…)`)
    }
    if (!view.cancelled) {
      const entry = await this.options.ledger.append('cancel', { job: id, ...(reason !== undefined ? { reason } : {}) })
      this.handleEntry(entry)
    }
    return this.get(id)!
  }

  /**
   * Live members as presence hears them, plus this node as it is now
   * (presence lists only the others): a slot this node is building is held
   * by it, and a platform only it offers is not "unmatched".
   */
  private liveMembers (): Member[] {
    const others = this.options.membership.members().filter((m) => m.author !== this.options.self.author)
    const slots = this.options.executor === undefined ? 0 : this.options.self.slots
    const lastActive = this.lastActive.get(this.options.self.author)
    return [...others, {
      author: this.options.self.author,
      platforms: this.options.self.platforms,
      slots,
      free: Math.max(0, slots - this.running.size - this.claiming.size),
      running: [...this.running.keys()],
      accepts: { network: this.options.policy.network, root: this.options.policy.root },
      environments: this.options.environments?.ready() ?? [],
      lastSeen: Date.now(),
      ...(lastActive !== undefined ? { lastActive } : {})
    }]
  }

  /**
   * Live members with their load as the plan sees it (from the log, see
   * withLoggedLoad): heartbeats carry a change of load only at their
   * interval, so their `free` may be many seconds old. Computed at most once
   * per LOADED_MEMBERS_TTL_MS: the API, webhooks and release pins ask for a
   * view on every entry, on every node.
   */
  private loadedMembers (now: number): Member[] {
    const kept = this.loaded
    if (kept !== undefined && now >= kept.at && now - kept.at < LOADED_MEMBERS_TTL_MS) return kept.members
    const { counts } = this.counting()
    const members = this.withLoggedLoad(this.liveMembers(), this.openViews(), now, counts)
    this.loaded = { at: now, members }
    return members
  }

  /** Open jobs the plan considers (duplicates of a watch's race are never built). */
  private openViews (): JobView[] {
    return this.index.activeViews((v) => isOpen(v) || this.diagnoses.mayDiagnose(v)).filter((v) => isOpen(v) && this.duplicateOf(v) === undefined)
  }

  private overlay (view: JobView, now: number): JobView {
    const duplicateOf = this.duplicateOf(view)
    if (duplicateOf !== undefined) view = { ...view, duplicateOf }
    if (view.verdict !== 'pending' && view.verdict !== 'unmatched') return view
    const members = this.loadedMembers(now)
    const counting = this.counting()
    return withLiveness(view, (platform) => explainUnmatched(view, platform.selector, members, now, counting))
  }

  /** The job this one duplicates (same watch and release, earlier in fold order), if it is a duplicate. */
  duplicateOf (view: Pick<JobView, 'id' | 'spec'>): string | undefined {
    if (view.spec.trigger === undefined) return undefined
    const canonical = this.watches.canonicalJob({ id: view.id, trigger: view.spec.trigger })
    return canonical !== undefined && canonical !== view.id ? canonical : undefined
  }

  private handleEntry (entry: DecodedEntry): void {
    const watch = this.watches.add(entry)
    if (watch !== undefined) this.emit('watch', { id: watch })
    if (entry.entry.type === 'watch' || entry.entry.type === 'unwatch' || entry.entry.type === 'poll') return
    this.noteActivity(entry)
    const changed = this.index.add(entry)
    if (changed === undefined) return
    if (entry.entry.type === 'cancel') this.abortCancelled(changed)
    const view = this.index.view(changed)
    if (view !== undefined && view.submitter === this.options.self.author && view.verdict !== 'pending') this.sourcePins.release(view.source, view.id)
    this.emit('job', { id: changed })
    this.schedulePlan()
  }

  /** Remember when each author last claimed or delivered (escalation waits while a node works). */
  private noteActivity (entry: DecodedEntry): void {
    const { type, author, time } = entry.entry
    if (type !== 'claim' && type !== 'result') return
    if ((this.lastActive.get(author) ?? 0) >= time) return
    // Most recent last, so the first keys are the ones to forget.
    this.lastActive.delete(author)
    this.lastActive.set(author, time)
    if (this.lastActive.size > MAX_ACTIVITY_AUTHORS) this.lastActive.delete(this.lastActive.keys().next().value!)
  }

  private abortCancelled (jobId: string): void {
    const view = this.index.view(jobId)
    if (view === undefined || !view.cancelled) return
    for (const run of this.running.values()) {
      if (run.job === jobId) run.controller.abort(new BuildhausError(`job ${jobId} was cancelled by its submitter`))
    }
  }

  private schedulePlan (): void {
    if (this.planQueued || !this.started) return
    this.planQueued = true
    setImmediate(() => {
      this.planQueued = false
      try {
        this.plan()
      } catch (err) {
        log.error('planning failed: %s', describeError(err))
      }
    })
  }

  /** Decide and start claims, refusals and diagnoses from the current log and presence. */
  private plan (): void {
    if (!this.started) return
    const now = Date.now()
    const { self } = this.options
    const members = this.liveMembers()
    const active = this.index.activeViews((v) => isOpen(v) || this.diagnoses.mayDiagnose(v))
    // A duplicate of a watch's race is never built: the first job for the release in fold order stands.
    const open = active.filter((v) => isOpen(v) && this.duplicateOf(v) === undefined)
    this.stopDuplicateRuns()
    this.diagnoses.plan(active, now)
    // A node whose key forked may not write: it claims nothing (its claims and results would be refused).
    if (this.options.executor === undefined || self.slots === 0 || this.options.ledger.isEquivocating(self.author)) return
    const { counts } = this.counting()
    this.stopYieldedRuns(members, now, counts)
    // A node its own policy does not count (not a member yet) builds nothing: its results would count for nobody.
    if (!counts(self.author)) return
    let free = self.slots - this.running.size - this.claiming.size
    if (free <= 0 || open.length === 0) return
    free -= this.resumeOwnClaims(open, now, free)
    if (free <= 0) return
    const loaded = this.withLoggedLoad(members, open, now, counts)
    this.loaded = { at: now, members: loaded }
    const { claims, refusals } = planClaims({
      now,
      self: {
        author: self.author,
        platforms: self.platforms,
        environments: this.options.environments?.ready() ?? [],
        free,
        running: [...this.running.keys()],
        ...lastActiveOf(this.lastActive, self.author),
        admit: (job) => this.admit(job)
      },
      members: loaded,
      jobs: open,
      leaseMs: this.leaseMs(),
      counts,
      ranking: this.ranking
    })
    for (const decision of claims) this.startClaim(decision.job, decision.platform, decision.lease, decision.reason)
    for (const refusal of refusals) {
      const key = slotKey(refusal.job, refusal.platform)
      if (this.refusing.has(key)) continue
      remember(this.refusing, key)
      void this.publishRefusal(refusal.job, refusal.platform, refusal.reason)
    }
  }

  /**
   * The lease to write in a claim: CLAIM_LEASE_MS (or the option) plus the
   * longest until our next heartbeat. A run's start publishes no heartbeat
   * (its claim says so), so the first heartbeat listing it, which renews the
   * claim while it lasts, may come a whole interval later (20 s at 50
   * members); the claim must hold until then, or others would see it lapse
   * and build the slot again.
   */
  private leaseMs (): number {
    return (this.options.leaseMs ?? CLAIM_LEASE_MS) + (this.options.membership.announcesWithinMs?.() ?? 0)
  }

  /** Whom this node's policy counts: only their claims hold slots, only they are designated. */
  private counting (): Counting {
    return countingOf(this.index.getPolicy())
  }

  /** Runs of a job that turned out to duplicate an earlier job for the same release: stop them. */
  private stopDuplicateRuns (): void {
    for (const run of this.running.values()) {
      const view = this.index.view(run.job)
      const original = view === undefined ? undefined : this.duplicateOf(view)
      if (original !== undefined && !run.controller.signal.aborted) run.controller.abort(new BuildhausError(`job ${run.job} duplicates job ${original} (the same release of the same watch)`))
    }
  }

  /**
   * Runs whose claim came after the slot was already full (another counted
   * node claimed it at the same moment, with an earlier claim in fold
   * order): every node now counts the other claim, so stop ours rather than
   * build a replica nobody asked for. A claim from a builder this node does
   * not count (a stranger with clock 0 and an endless lease) holds nothing,
   * so it never stops a run.
   */
  private stopYieldedRuns (members: Member[], now: number, counts: (author: string) => boolean): void {
    const live = new Map(members.filter((m) => counts(m.author)).map((m) => [m.author, m]))
    for (const [key, run] of this.running) {
      if (run.yielded) continue
      const view = this.index.view(run.job)
      const platform = view?.platforms.find((p) => p.selector === run.platform)
      if (view === undefined || platform === undefined) continue
      if (!slotState(view, platform, now, live, counts).yielded.includes(this.options.self.author)) continue
      run.yielded = true
      this.stats.yielded++
      run.controller.abort(new BuildhausError(`another node claimed ${key} first; this node stops its run`))
    }
  }

  private startClaim (jobId: string, platform: string, lease: number, reason: string): boolean {
    const key = slotKey(jobId, platform)
    if (this.running.has(key) || this.claiming.has(key)) return false
    if (tracing) trace('plan-claim', jobId)
    this.claiming.add(key)
    const run = this.claimAndRun(jobId, platform, lease, reason).finally(() => {
      this.claiming.delete(key)
      this.runs.delete(run)
    })
    this.runs.add(run)
    return true
  }

  /**
   * Slots this node claimed before it (re)started and never finished: every
   * other node still sees the claim holding until its lease passes, so nobody
   * else will take them before then. Run them again now rather than leave
   * them idle for the rest of the lease. Returns how many were started.
   */
  private resumeOwnClaims (open: JobView[], now: number, free: number): number {
    const self = this.options.self.author
    let started = 0
    for (const view of open) {
      for (const platform of view.platforms) {
        if (started >= free) return started
        if (!wantsBuilders(view, platform)) continue
        const mine = platform.claims.filter((c) => c.builder === self)
        if (mine.length === 0) continue
        // Only claims of an earlier run of this node, still holding by their lease; ours from this run are tracked in memory.
        if (mine.some((c) => c.time >= this.startedAt) || Math.max(...mine.map((c) => c.lease)) <= now) continue
        if (platform.results.some((r) => r.builder === self)) continue
        const admission = this.admit(view)
        const key = slotKey(view.id, platform.selector)
        if (!admission.ok) {
          if (this.refusing.has(key)) continue
          remember(this.refusing, key)
          void this.publishRefusal(view.id, platform.selector, admission.reason)
          continue
        }
        if (this.startClaim(view.id, platform.selector, now + this.leaseMs(), 'resuming a claim of this node from before it restarted')) started++
      }
    }
    return started
  }

  /**
   * Other nodes' free slots from the log rather than their last heartbeat
   * (up to a few seconds old): claims and results travel at once, so a
   * member's held claims say how busy it is now. Slots a heartbeat lists as
   * running that no open claim accounts for (a run of a job decided or
   * cancelled meanwhile, a claim not yet received) keep it busy too, unless
   * the member already delivered a result there (then the heartbeat is stale).
   */
  private withLoggedLoad (members: Member[], open: JobView[], now: number, counts: (author: string) => boolean): Member[] {
    const live = new Map(members.filter((m) => counts(m.author)).map((m) => [m.author, m]))
    const busy = new Map<string, Set<string>>()
    const note = (builder: string, key: string): void => {
      const slots = busy.get(builder)
      if (slots === undefined) busy.set(builder, new Set([key]))
      else slots.add(key)
    }
    for (const view of open) {
      for (const platform of view.platforms) {
        for (const builder of slotState(view, platform, now, live, counts).holding) note(builder, slotKey(view.id, platform.selector))
      }
    }
    return members.map((m) => {
      if (m.author === this.options.self.author) return m
      for (const key of m.running) if (!this.delivered(m.author, key)) note(m.author, key)
      return { ...m, free: Math.max(0, m.slots - (busy.get(m.author)?.size ?? 0)), ...lastActiveOf(this.lastActive, m.author) }
    })
  }

  /** Whether `builder` has published a result for the slot `<job>/<selector>`. */
  private delivered (builder: string, key: string): boolean {
    const slash = key.indexOf('/')
    const platform = this.index.view(key.slice(0, slash))?.platforms.find((p) => p.selector === key.slice(slash + 1))
    return platform?.results.some((r) => r.builder === builder) ?? false
  }

  /** What this node's admission policy says of the job: refused with a reason, or admitted with the limits to run it under. */
  private admission (job: JobView): ReturnType<typeof admit> {
    return admit(this.options.policy, { network: job.spec.network, root: job.spec.root, limits: requestedLimits(job), submitter: job.submitter })
  }

  /** The admission as the claim planner takes it. */
  private admit (job: JobView): Admission {
    const admission = this.admission(job)
    return admission.ok ? { ok: true } : { ok: false, reason: admission.reason }
  }

  private async claimAndRun (jobId: string, platform: string, lease: number, reason: string): Promise<void> {
    const key = slotKey(jobId, platform)
    const view = this.index.view(jobId)
    if (view === undefined || view.cancelled || this.options.executor === undefined || !this.started) return
    const admission = this.admission(view)
    if (!admission.ok) {
      // The plan checked admission already; publish the refusal so the slot does not wait for a lease.
      await this.publishRefusal(jobId, platform, admission.reason)
      return
    }
    const controller = new AbortController()
    // The claim is written while the run starts: it only tells the others to pass this slot by, and the
    // result, appended after it, can never precede it in this node's chain. A claim that cannot be
    // written stops the run.
    const claimed = this.options.ledger.append('claim', { job: jobId, platform, lease }).then(() => {
      this.stats.claims++
      log('claimed %s (%s)', key, reason)
    }, (err: unknown) => {
      controller.abort(new BuildhausError(`could not claim ${key}: ${describeError(err)}`))
    })
    this.running.set(key, { job: jobId, platform, controller, started: Date.now() })
    this.emit('run', { job: jobId, platform, running: true })
    // Busy is no news: the claim tells every node.
    this.advertise(false)
    let resulted = false
    try {
      const body = await runSlot({
        job: view,
        platform,
        limits: admission.limits,
        executor: this.options.executor,
        ...(this.options.environments !== undefined ? { environments: this.options.environments } : {}),
        blobs: this.options.blobs,
        fetcher: this.options.fetcher,
        sourceHolders: this.sourceHolders(view),
        workRoot: this.options.workRoot,
        signal: controller.signal,
        onLog: (text) => { this.emit('log', { job: jobId, platform, text }) },
        onCleanup: (done) => {
          this.cleanups.add(done)
          void done.finally(() => { this.cleanups.delete(done) })
        }
      })
      await claimed
      controller.signal.throwIfAborted()
      if (this.options.sign !== undefined && body.status === 'pass' && body.artifacts.length > 0) {
        body.provenance = Buffer.from(this.options.sign(provenanceSigningInput(view, platform, body.artifacts))).toString('hex')
      }
      await this.publishResult(body)
      resulted = true
    } catch (err) {
      if (controller.signal.aborted) log('run of %s stopped: %s', key, describeError(controller.signal.reason))
      else log.error('run of %s failed: %s', key, describeError(err))
    } finally {
      await claimed
      this.running.delete(key)
      this.emit('run', { job: jobId, platform, running: false })
      // A result gives the slot back in every node's plan; a run that ended without one (yielded,
      // cancelled, failed to publish) is news no entry carries, and a heartbeat still listing it
      // would keep this node busy in the others' plans for a whole interval.
      this.advertise(!resulted)
      this.schedulePlan()
    }
  }

  /**
   * Publish a result, always: a body that cannot be encoded (an artifact
   * path with a line feed, more bytes than an entry may hold) is published
   * as an `error` result saying why, and a body the log refuses is retried
   * once the same way. A result that is never published would leave the
   * claim to lapse and the job to be built again and again.
   */
  private async publishResult (result: ResultBody): Promise<void> {
    let body = publishableResult(result)
    if (body !== result) log.error('result of %s/%s replaced by an error: %s', result.job, result.platform, body.reason ?? '')
    try {
      await this.options.ledger.append('result', body)
    } catch (err) {
      if (!(err instanceof InvalidEntryError)) throw err
      body = errorInstead(result, `the result could not be published: ${describeError(err)}`)
      log.error('result of %s/%s refused by the log (%s); publishing an error instead', result.job, result.platform, describeError(err))
      await this.options.ledger.append('result', body)
    }
    this.stats.runs[body.status] = (this.stats.runs[body.status] ?? 0) + 1
    this.stats.runSeconds.count++
    this.stats.runSeconds.sum += Math.max(0, body.end - body.start) / 1000
    log('published %s for %s/%s', body.status, body.job, body.platform)
  }

  private async publishRefusal (jobId: string, platform: string, reason: string): Promise<void> {
    const now = Date.now()
    const fingerprint = this.options.executor !== undefined ? await this.options.executor.fingerprint() : undefined
    try {
      await this.publishResult({
        job: jobId,
        platform,
        status: 'refused',
        reason,
        steps: [],
        log: null,
        logSize: 0,
        artifacts: [],
        env: {
          os: fingerprint?.os ?? process.platform,
          kernel: fingerprint?.kernel ?? 'unknown',
          arch: fingerprint?.arch ?? process.arch,
          sandbox: fingerprint?.sandbox ?? 'none',
          tools: {}
        },
        start: now,
        end: now
      })
    } catch (err) {
      log.error('could not publish a refusal of %s/%s: %s', jobId, platform, describeError(err))
    }
  }

  private sourceHolders (view: JobView): string[] {
    const holders = [view.submitter]
    for (const platform of view.platforms) {
      for (const r of platform.results) if (!holders.includes(r.builder)) holders.push(r.builder)
      for (const c of platform.claims) if (!holders.includes(c.builder)) holders.push(c.builder)
    }
    return holders.filter((a) => a !== this.options.self.author)
  }

  /**
   * Tell presence how busy we are. The others learn of each run from its
   * claim and its result in the log, at once (withLoggedLoad): a claim makes
   * a node busy in every plan, a result frees the slot. So a change of load
   * waits for the next heartbeat of the interval (which renews running
   * claims past their lease) unless `now`: a run that ended without a
   * result. At 50 nodes a heartbeat per start and end of a run cost the mesh
   * about 0.5 CPU-s per 2-replica job (docs/SCALING.md, item 0).
   */
  private advertise (now: boolean): void {
    const slots = this.options.executor === undefined ? 0 : this.options.self.slots
    this.options.membership.update({ free: Math.max(0, slots - this.running.size), running: [...this.running.keys()] }, { now })
  }
}
