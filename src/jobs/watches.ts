import type { DecodedEntry } from '../ledger/entry.js'
import type { JobBody, JobTemplate, PollBody, WatchBody } from './bodies.js'
import { MAX_JOB_NAME_LENGTH, MAX_NEW_RELEASES_PER_POLL, MAX_RELEASE_LENGTH, MAX_WATCHES, MAX_WATCHES_PER_AUTHOR, RELEASE_PATTERN } from './constants.js'
import { compareEntries } from './state.js'
import { isTrusted, type TrustPolicy } from './trust.js'
import { rank } from './rendezvous.js'
import { jobBodyFromSpec, type JobSpec, type SpecOverrides } from './spec.js'
import type { Member } from './scheduler.js'

/**
 * Watches: upstream sources the mesh polls, recorded in the log. A `watch`
 * names a source (a git repository's tags, an npm package, a PyPI project,
 * a Debian source package in a suite) and the job to run for each new
 * release; `unwatch` ends it (only its author's counts); `poll` entries
 * report how polling went. Every node folds the same watches from the same
 * entries; which node polls is decided by rendezvous hashing among live
 * pollers, as claims are (see designatedPollers).
 */

// ---------------------------------------------------------------- versions

/**
 * Order release names as people read versions: `v1.10.0` after `v1.9.2`,
 * `2.0.0-rc.1` before `2.0.0`. Runs of digits compare as numbers, other
 * runs as text; a leading `v` and a `refs/tags/` prefix are ignored; a
 * pre-release tail (after `-`, `~`, or letters such as `rc`, `a`, `b`)
 * sorts before the release itself.
 */
export function compareVersions (a: string, b: string): number {
  const ta = tokens(a)
  const tb = tokens(b)
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const x = ta[i]
    const y = tb[i]
    if (x === undefined) return y !== undefined && isPre(y) ? 1 : -1
    if (y === undefined) return isPre(x) ? -1 : 1
    if (typeof x === 'number' && typeof y === 'number') { if (x !== y) return x - y; continue }
    if (typeof x === 'number') return 1
    if (typeof y === 'number') return -1
    if (x !== y) return x < y ? -1 : 1
  }
  return a < b ? -1 : a > b ? 1 : 0
}

function tokens (version: string): Array<number | string> {
  const bare = version.replace(/^refs\/tags\//, '').replace(/^v(?=\d)/, '')
  return [...bare.matchAll(/(\d+)|([A-Za-z]+)|([~-])/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2] ?? m[3]!))
}

function isPre (token: number | string): boolean {
  return typeof token === 'string' && (token === '-' || token === '~' || /^(a|b|c|rc|alpha|beta|pre|preview|dev)$/i.test(token))
}

// ---------------------------------------------------------------- the fold

export interface PollReport {
  author: string
  time: number
  ok: boolean
  reason?: string
  releases?: number
  latest?: string
}

export interface WatchView {
  id: string
  author: string
  time: number
  spec: WatchBody
  /** Removed by its author. */
  removed: boolean
  /** Over its author's quota or the node's bound: folded but never polled. */
  ignored?: string
  lastSuccess?: PollReport
  lastFailure?: PollReport
  /** release → the job made for it (the first in fold order when several were). */
  jobs: Record<string, string>
}

export interface ReleaseNews {
  /** Releases to make jobs for now, oldest first. */
  fresh: string[]
  /** Newer releases than these wait for a later poll (the bound per poll). */
  deferred: number
}

/**
 * Every watch a node knows, with the jobs its releases made and the latest
 * poll reports of trusted authors. Bounded: a stranger's watches beyond
 * MAX_WATCHES_PER_AUTHOR, and any beyond MAX_WATCHES, are kept as ignored.
 */
export class WatchIndex {
  private readonly watches = new Map<string, { entry: DecodedEntry, removed: boolean, last: { ok?: PollReport, fail?: PollReport }, jobs: Map<string, DecodedEntry> }>()
  private readonly perAuthor = new Map<string, number>()
  private readonly ignored = new Map<string, string>()
  /** Job entries by `<watch>\n<release>`, all of them (duplicates included). */
  private readonly triggered = new Map<string, DecodedEntry[]>()
  private policy: TrustPolicy

  constructor (policy: TrustPolicy = {}) {
    this.policy = policy
  }

  setPolicy (policy: TrustPolicy): void {
    this.policy = policy
  }

  /** Index an entry of any type; returns the watch id it concerns, if any. */
  add (entry: DecodedEntry): string | undefined {
    const { type, author, time } = entry.entry
    const body = entry.entry.body as Record<string, unknown>
    if (type === 'watch') {
      if (this.watches.has(entry.id) || this.ignored.has(entry.id)) return undefined
      const count = this.perAuthor.get(author) ?? 0
      if (count >= MAX_WATCHES_PER_AUTHOR) { this.ignored.set(entry.id, `its author already has ${MAX_WATCHES_PER_AUTHOR} watches`); return entry.id }
      if (this.watches.size >= MAX_WATCHES) { this.ignored.set(entry.id, `this node already folds ${MAX_WATCHES} watches`); return entry.id }
      this.perAuthor.set(author, count + 1)
      this.watches.set(entry.id, { entry, removed: false, last: {}, jobs: new Map() })
      for (const [key, jobs] of this.triggered) if (key.startsWith(`${entry.id}\n`)) for (const job of jobs) this.noteJob(job)
      return entry.id
    }
    if (type === 'unwatch') {
      const watch = this.watches.get(body.watch as string)
      if (watch === undefined || watch.entry.entry.author !== author || watch.removed) return undefined
      watch.removed = true
      this.perAuthor.set(author, (this.perAuthor.get(author) ?? 1) - 1)
      return watch.entry.id
    }
    if (type === 'poll') {
      const watch = this.watches.get(body.watch as string)
      if (watch === undefined || !isTrusted(this.policy, author)) return undefined
      const poll = body as unknown as PollBody
      const report: PollReport = { author, time, ok: poll.ok, ...(poll.reason !== undefined ? { reason: poll.reason } : {}), ...(poll.releases !== undefined ? { releases: poll.releases } : {}), ...(poll.latest !== undefined ? { latest: poll.latest } : {}) }
      const slot = poll.ok ? 'ok' : 'fail'
      if ((watch.last[slot]?.time ?? -1) <= time) watch.last[slot] = report
      return watch.entry.id
    }
    if (type === 'job') {
      const trigger = (body as unknown as JobBody).trigger
      if (trigger === undefined) return undefined
      const key = `${trigger.watch}\n${trigger.release}`
      const list = this.triggered.get(key) ?? []
      if (list.some((e) => e.id === entry.id)) return undefined
      list.push(entry)
      this.triggered.set(key, list)
      this.noteJob(entry)
      return trigger.watch
    }
    return undefined
  }

  private noteJob (job: DecodedEntry): void {
    const trigger = (job.entry.body as unknown as JobBody).trigger!
    const watch = this.watches.get(trigger.watch)
    if (watch === undefined) return
    const held = watch.jobs.get(trigger.release)
    if (held === undefined || compareEntries(job, held) < 0) watch.jobs.set(trigger.release, job)
  }

  /**
   * The job that stands for its trigger's release: the first in fold order
   * (Lamport clock, author, seq, id) of every job with the same watch and
   * release. Every node picks the same one; the others are duplicates of a
   * race, never built (the scheduler skips them).
   */
  canonicalJob (job: DecodedEntry | { id: string, trigger?: { watch: string, release: string } }): string | undefined {
    const trigger = 'entry' in job ? (job.entry.body as unknown as JobBody).trigger : job.trigger
    if (trigger === undefined) return undefined
    const list = this.triggered.get(`${trigger.watch}\n${trigger.release}`)
    if (list === undefined || list.length === 0) return undefined
    return [...list].sort(compareEntries)[0]!.id
  }

  /** Whether a job is a duplicate of an earlier job for the same release. */
  isDuplicate (id: string, trigger: { watch: string, release: string } | undefined): boolean {
    if (trigger === undefined) return false
    const canonical = this.canonicalJob({ id, trigger })
    return canonical !== undefined && canonical !== id
  }

  get (id: string): WatchView | undefined {
    const watch = this.watches.get(id)
    if (watch === undefined) return undefined
    return {
      id,
      author: watch.entry.entry.author,
      time: watch.entry.entry.time,
      spec: watch.entry.entry.body as unknown as WatchBody,
      removed: watch.removed,
      ...(watch.last.ok !== undefined ? { lastSuccess: watch.last.ok } : {}),
      ...(watch.last.fail !== undefined ? { lastFailure: watch.last.fail } : {}),
      jobs: Object.fromEntries([...watch.jobs].sort(([a], [b]) => compareVersions(a, b)).map(([release, job]) => [release, job.id]))
    }
  }

  /** Watches, newest first; removed ones only when asked. */
  list (options: { removed?: boolean } = {}): WatchView[] {
    return [...this.watches.keys()].map((id) => this.get(id)!).filter((w) => options.removed === true || !w.removed).sort((a, b) => b.time - a.time || (a.id < b.id ? -1 : 1))
  }

  /** Why a watch is not polled, if it is folded but ignored. */
  ignoredReason (id: string): string | undefined {
    return this.ignored.get(id)
  }

  /**
   * Which of the listed releases get a job now: those with none yet that are
   * newer (in version order) than the newest that has one, or published after
   * the watch was made; on a watch's first poll, only the newest release.
   * At most MAX_NEW_RELEASES_PER_POLL, oldest first.
   */
  news (id: string, releases: ReadonlyArray<{ release: string, publishedAt?: number }>): ReleaseNews {
    const watch = this.get(id)
    if (watch === undefined || watch.removed) return { fresh: [], deferred: 0 }
    const built = Object.keys(watch.jobs)
    const sorted = [...releases].filter((r) => RELEASE_PATTERN.test(r.release) && r.release.length <= MAX_RELEASE_LENGTH).sort((a, b) => compareVersions(a.release, b.release))
    let candidates: string[]
    if (built.length === 0) {
      const newest = sorted.at(-1)
      candidates = [
        ...sorted.filter((r) => r !== newest && r.publishedAt !== undefined && r.publishedAt > watch.time).map((r) => r.release),
        ...(newest !== undefined ? [newest.release] : [])
      ]
    } else {
      const newestBuilt = built.sort(compareVersions).at(-1)!
      candidates = sorted.filter((r) => !(r.release in watch.jobs) && (compareVersions(r.release, newestBuilt) > 0 || (r.publishedAt !== undefined && r.publishedAt > watch.time))).map((r) => r.release)
    }
    return { fresh: candidates.slice(0, MAX_NEW_RELEASES_PER_POLL), deferred: Math.max(0, candidates.length - MAX_NEW_RELEASES_PER_POLL) }
  }
}

/**
 * The job body's spec fields for one release from a watch's template:
 * `{version}` and `{name}` replaced in the job's name and steps (a release
 * name is checked against RELEASE_PATTERN first, so it cannot inject shell).
 */
export function jobFromTemplate (template: JobTemplate, release: string, name: string): Omit<JobBody, 'source' | 'sourceSize'> {
  if (!RELEASE_PATTERN.test(release)) throw new Error(`the release name ${JSON.stringify(release.slice(0, 80))} has characters a job may not use`)
  const fill = (text: string): string => text.replaceAll('{version}', release).replaceAll('{name}', name)
  return {
    name: fill(template.name).slice(0, MAX_JOB_NAME_LENGTH),
    steps: template.steps.map((s) => ({ name: s.name, run: fill(s.run) })),
    platforms: template.platforms.map((p) => ({ ...p })),
    artifacts: [...template.artifacts],
    independent: [...template.independent],
    timeout: template.timeout,
    limits: { ...template.limits },
    network: template.network,
    root: template.root
  }
}


/** A poller that polls without news still reports at least this often (a `poll` entry), so the mesh can tell it is alive. */
export const POLL_REPORT_REFRESH_MS = 6 * 60 * 60_000

/**
 * Who polls a watch now: the live members that poll and that the reader
 * trusts (the same notion of eligible nodes as for claims), ranked by
 * rendezvous hashing on the watch id, as claims are; the first one polls. If
 * nothing was heard of the watch (no report, no job) for three report
 * periods, the next one polls too, and so on: a designated node that is
 * live but never polls (a faulty version, no network) cannot stall a watch.
 * When the first one leaves, the next is first: failover needs no entry.
 */
export function designatedPollers (watch: WatchView, members: readonly Member[], policy: TrustPolicy, now: number): string[] {
  const eligible = members.filter((m) => m.polls === true && isTrusted(policy, m.author)).map((m) => m.author)
  const ranked = rank(watch.id, 'watch', eligible)
  const heard = Math.max(watch.time, watch.lastSuccess?.time ?? 0, watch.lastFailure?.time ?? 0)
  const stale = 3 * Math.max(POLL_REPORT_REFRESH_MS, watch.spec.interval * 1000)
  const extra = Math.floor(Math.max(0, now - heard) / stale)
  return ranked.slice(0, 1 + extra)
}

/**
 * A watch's job template from a buildhaus.json-like spec (validated as a
 * job is, with `{version}` and `{name}` left in for each release to fill).
 */
export function templateFromSpec (spec: JobSpec, overrides: SpecOverrides = {}): JobTemplate {
  const { source: _source, sourceSize: _size, trigger: _trigger, upstream: _upstream, ...template } = jobBodyFromSpec(spec, overrides, { hash: '0'.repeat(64), size: 0 })
  return template
}
