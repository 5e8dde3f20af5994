import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { packDirectory } from '../../archive/index.js'
import {
  compareVersions, designatedPollers, isTrusted, jobBodyFromSpec, jobBodySchema, jobFromTemplate, POLL_REPORT_REFRESH_MS, readJobSpec,
  RELEASE_PATTERN, type JobBody, type JobService, type Member, type PollBody, type WatchView
} from '../../jobs/index.js'
import { MAX_ENTRY_BYTES } from '../../ledger/constants.js'
import type { EntryBody } from '../../ledger/entry.js'
import { canonicalJson } from '../../util/canonical-json.js'
import { describeError, UsageError } from '../../util/errors.js'
import { NotWatchAuthorError } from '../errors.js'
import { waitFor } from '../../util/wait.js'
import type { WatchesContext, WatchListing } from '../api/routes/watches.js'
import { componentLogger } from '../../util/logger.js'
import { MAX_RELEASE_BYTES, upstreamOf, type AddressPolicy } from '../../upstream/index.js'

const log = componentLogger('node:watcher')

/** The least time between two polls of one watch on this node, whatever the watch asks (`join --watch-min-interval`). */
export const DEFAULT_MIN_POLL_INTERVAL_S = 300
/** Polls one node runs at once. */
const MAX_CONCURRENT_POLLS = 2
/** Back-off after failures doubles from the interval, up to a day. */
const MAX_BACKOFF_MS = 24 * 60 * 60_000
/** Poll reports one node writes per watch and hour, at most (a flapping upstream must not fill the log). */
export const MAX_REPORTS_PER_HOUR = 6
/** How often the watcher looks for polls that are due. */
const TICK_MS = 1_000
/** One whole poll (listing, fetching up to three releases, packing). */
const POLL_TIMEOUT_MS = 15 * 60_000

export interface WatcherParts {
  self: string
  jobs: JobService
  ledger: { append (type: string, body: EntryBody): Promise<unknown> }
  blobs: { put (data: Uint8Array, options?: { pin?: boolean }): Promise<{ hash: string, size: number }> }
  members (): Member[]
  policy: AddressPolicy
  workRoot: string
  minIntervalS: number
}

interface PollState {
  next: number
  failures: number
  running: boolean
  /** Our last report: its outcome and when. */
  reported?: { ok: boolean, reason?: string, at: number }
  /** When we wrote our recent reports (for the hourly bound). */
  recent: number[]
}

/**
 * Polls the watches this node is designated for (see designatedPollers),
 * turns each new release into exactly one job (trigger: the watch and the
 * release; upstream: its URL and digest), and reports in the log how
 * polling goes. A job that loses a race to an earlier one for the same
 * release is cancelled by its author at once (and never built by anyone).
 */
export class Watcher {
  private readonly parts: WatcherParts
  private readonly state = new Map<string, PollState>()
  private timer: ReturnType<typeof setInterval> | undefined
  private running = 0
  private readonly controller = new AbortController()
  private offJob: (() => void) | undefined

  constructor (parts: WatcherParts) {
    this.parts = parts
  }

  start (): void {
    this.timer = setInterval(() => { this.tick() }, TICK_MS)
    this.timer.unref?.()
    // A job this node made that lost a race: cancel it.
    this.offJob = this.parts.jobs.on('job', (event) => { void this.cancelIfDuplicate(event.detail.id) })
  }

  stop (): void {
    clearInterval(this.timer)
    this.offJob?.()
    this.controller.abort()
  }

  /** The watches as the API lists them: the log's view and this node's part in polling each. */
  listing (id: string): WatchListing | undefined {
    const watch = this.parts.jobs.watches.get(id)
    if (watch === undefined) return undefined
    const ignored = this.parts.jobs.watches.ignoredReason(id) ?? (isTrusted(this.parts.jobs.trustPolicy(), watch.author) ? undefined : 'its author is not trusted by this node')
    const local = this.state.get(id)
    const pollers = watch.removed || ignored !== undefined ? [] : designatedPollers(watch, this.parts.members(), this.parts.jobs.trustPolicy(), Date.now())
    return {
      ...watch,
      ...(ignored !== undefined ? { ignored } : {}),
      pollers,
      ...(local !== undefined && pollers.includes(this.parts.self) ? { nextPoll: local.next, failures: local.failures } : {})
    }
  }

  api (): WatchesContext['watches'] {
    return {
      list: () => this.parts.jobs.watches.list().map((w) => this.listing(w.id)!),
      get: (id) => this.listing(id),
      add: async (body) => {
        const entry = await this.parts.ledger.append('watch', body as unknown as EntryBody) as { id: string }
        await waitFor(() => this.parts.jobs.watches.get(entry.id), { timeoutMs: 5_000, what: 'the new watch to be folded' })
        return this.listing(entry.id)!
      },
      remove: async (id) => {
        const watch = this.parts.jobs.watches.get(id)
        if (watch === undefined) throw new UsageError(`no watch ${id}`)
        if (watch.author !== this.parts.self) throw new NotWatchAuthorError(`only the node that added watch ${id.slice(0, 12)} can remove it (its key is ${watch.author.slice(0, 16)}…)`)
        if (!watch.removed) {
          await this.parts.ledger.append('unwatch', { watch: id })
          await waitFor(() => this.parts.jobs.watches.get(id)?.removed, { timeoutMs: 5_000, what: 'the watch to be removed' })
        }
        return this.listing(id)!
      }
    }
  }

  /** This node's own view of a watch's polling (the log's reports are in the WatchView). */
  localState (id: string): { nextPoll?: number, failures: number, polling: boolean } | undefined {
    const s = this.state.get(id)
    return s === undefined ? undefined : { nextPoll: s.next, failures: s.failures, polling: s.running }
  }

  private tick (): void {
    const now = Date.now()
    const policy = this.parts.jobs.trustPolicy()
    const members = this.parts.members()
    for (const watch of this.parts.jobs.watches.list()) {
      if (this.running >= MAX_CONCURRENT_POLLS) return
      if (this.parts.jobs.watches.ignoredReason(watch.id) !== undefined || !isTrusted(policy, watch.author)) continue
      if (!designatedPollers(watch, members, policy, now).includes(this.parts.self)) continue
      const state = this.state.get(watch.id) ?? { next: 0, failures: 0, running: false, recent: [] }
      this.state.set(watch.id, state)
      if (state.running || now < state.next) continue
      state.running = true
      this.running++
      void this.poll(watch, state).finally(() => {
        state.running = false
        this.running--
        const interval = Math.max(watch.spec.interval, this.parts.minIntervalS) * 1000
        state.next = Date.now() + Math.min(MAX_BACKOFF_MS, interval * 2 ** Math.min(state.failures, 10))
      })
    }
  }

  private async poll (watch: WatchView, state: PollState): Promise<void> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(POLL_TIMEOUT_MS)])
    const work = join(this.parts.workRoot, `watch-${watch.id.slice(0, 16)}`)
    try {
      const upstream = await upstreamOf(watch.spec, this.parts.policy)
      const listed = await upstream.list(signal)
      const news = this.parts.jobs.watches.news(watch.id, listed)
      for (const release of news.fresh) {
        // Another poller may have made it meanwhile (a failover, a race): look again just before.
        const current = this.parts.jobs.watches.get(watch.id)
        if (current === undefined || current.removed || release in current.jobs) continue
        await rm(work, { recursive: true, force: true })
        await mkdir(work, { recursive: true })
        const fetched = await upstream.fetch(release, work, signal)
        const packed = await packDirectory(fetched.dir, { maxBytes: MAX_RELEASE_BYTES })
        const source = await this.parts.blobs.put(packed.bytes, { pin: true })
        const body = await this.jobBody(watch, release, fetched.dir, source, fetched.upstream)
        const view = await this.parts.jobs.submitBody(body)
        log('watch %s: release %s is job %s', watch.id.slice(0, 12), release, view.id)
        await this.cancelIfDuplicate(view.id)
      }
      state.failures = 0
      const newest = [...listed].map((r) => r.release).filter((r) => RELEASE_PATTERN.test(r)).sort(compareVersions).at(-1)
      await this.report(watch, state, { ok: true, releases: listed.length, ...(newest !== undefined ? { latest: newest.slice(0, 128) } : {}), ...(news.deferred > 0 ? { reason: `${news.deferred} more new releases wait for the next poll` } : {}) })
    } catch (err) {
      if (this.controller.signal.aborted) return
      state.failures++
      const reason = describeError(err).slice(0, 1000)
      log('watch %s: poll failed: %s', watch.id.slice(0, 12), reason)
      await this.report(watch, state, { ok: false, reason })
    } finally {
      await rm(work, { recursive: true, force: true }).catch(() => {})
    }
  }

  /** The job for a release: the watch's template, else the release's own buildhaus.json; with trigger and upstream. */
  private async jobBody (watch: WatchView, release: string, dir: string, source: { hash: string, size: number }, upstream: JobBody['upstream']): Promise<JobBody> {
    const name = watch.spec.package ?? watch.spec.source.replace(/\/+$/, '').split('/').at(-1)!.replace(/\.git$/, '')
    const base = watch.spec.job !== undefined
      ? { ...jobFromTemplate(watch.spec.job, release, name), source: source.hash, sourceSize: source.size }
      : jobBodyFromSpec(await readJobSpec(dir), {}, source)
    const body: JobBody = { ...base, trigger: { watch: watch.id, release }, ...(upstream !== undefined ? { upstream } : {}) }
    const checked = jobBodySchema.safeParse(body)
    if (!checked.success) throw new Error(`the job for ${release} is invalid: ${checked.error.issues[0]?.message ?? ''}`)
    if (Buffer.byteLength(canonicalJson(body)) > MAX_ENTRY_BYTES - 1024) throw new Error(`the job for ${release} is too large for an entry`)
    return body
  }

  /** If job `id` is ours and duplicates an earlier job for the same release, cancel it. */
  private async cancelIfDuplicate (id: string): Promise<void> {
    const view = this.parts.jobs.get(id)
    if (view === undefined || view.submitter !== this.parts.self || view.cancelled || view.duplicateOf === undefined) return
    try {
      await this.parts.jobs.cancel(id, `duplicate of job ${view.duplicateOf} (the same release of the same watch, published first)`)
    } catch (err) {
      log.error('could not cancel duplicate job %s: %s', id, describeError(err))
    }
  }

  /**
   * Write a `poll` entry when the outcome changed, or our last one is older
   * than POLL_REPORT_REFRESH_MS; a flapping upstream writes at most
   * MAX_REPORTS_PER_HOUR an hour per watch.
   */
  private async report (watch: WatchView, state: PollState, outcome: Omit<PollBody, 'watch'>): Promise<void> {
    const now = Date.now()
    const last = state.reported
    const changed = last === undefined || last.ok !== outcome.ok || (!outcome.ok && last.reason !== outcome.reason)
    if (!changed && now - last.at < POLL_REPORT_REFRESH_MS) return
    state.recent = state.recent.filter((t) => now - t < 60 * 60_000)
    if (state.recent.length >= MAX_REPORTS_PER_HOUR) return
    state.recent.push(now)
    try {
      await this.parts.ledger.append('poll', { watch: watch.id, ...outcome })
      state.reported = { ok: outcome.ok, ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}), at: now }
    } catch (err) {
      log.error('could not report a poll of %s: %s', watch.id, describeError(err))
    }
  }
}
