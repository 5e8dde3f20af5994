import type { JobView } from '../../jobs/index.js'
import type { NodeClient } from './client.js'
import { short, verdictText } from './job-format.js'

/** A job's verdict is final once it is one of these. */
export const FINAL_VERDICTS = new Set(['verified', 'failed', 'mismatch', 'cancelled'])

/** How often the watcher re-reads the job even without an event (events may be missed). */
const POLL_MS = 2_000

export interface WatchResult {
  job: JobView
  /** False when the deadline passed before a final verdict. */
  final: boolean
}

/**
 * Follow a job until its verdict is final or the deadline passes, telling
 * `progress` each new claim, result and verdict as it happens. Listens to the
 * node's event stream and re-reads the job on each event about it (and every
 * few seconds regardless).
 */
export async function watchJob (client: NodeClient, id: string, options: { deadline: number, signal: AbortSignal, progress?: (line: string) => void, pollMs?: number }): Promise<WatchResult> {
  const seen = new Set<string>()
  const report = (view: JobView): void => {
    if (options.progress === undefined) return
    for (const line of progressLines(view)) {
      if (seen.has(line)) continue
      seen.add(line)
      options.progress(line)
    }
  }

  // One controller that the caller's signal, the deadline and our own return all abort. (Not
  // AbortSignal.any: the event stream then sometimes missed the abort and the watch never returned.)
  const stop = new AbortController()
  const signal = stop.signal
  const onCallerAbort = (): void => { stop.abort(options.signal.reason) }
  if (options.signal.aborted) onCallerAbort()
  else options.signal.addEventListener('abort', onCallerAbort, { once: true })
  const deadline = setTimeout(() => { stop.abort(new DOMException('the watch deadline passed', 'TimeoutError')) }, Math.max(0, options.deadline - Date.now()))
  let wake: (() => void) | undefined
  let subscribed: () => void = () => {}
  const listening = new Promise<void>((resolve) => { subscribed = resolve })
  // Events only wake the loop below; every read of the job happens there.
  const events = (async () => {
    let current = ''
    try {
      for await (const line of client.stream('/api/events', { signal })) {
        // The node subscribes a stream before it writes its first line.
        subscribed()
        if (line.startsWith('event: ')) current = line.slice(7)
        else if (line.startsWith('data: ') && current === 'job' && line.includes(id)) wake?.()
      }
    } catch {
      // The poll below carries on without events.
    } finally {
      subscribed()
    }
  })()
  try {
    // The first read once the event stream is subscribed (or after a poll's wait without it): a verdict
    // before the read is in it, one after wakes us. (Read before subscribing, a verdict between the two was seen by the poll alone.)
    await Promise.race([listening, new Promise((resolve) => { setTimeout(resolve, options.pollMs ?? POLL_MS).unref() })])
    if (options.signal.aborted) throw options.signal.reason
    let job = await client.getJson<JobView>(`/api/jobs/${id}`, { signal: options.signal })
    report(job)
    if (FINAL_VERDICTS.has(job.verdict)) return { job, final: true }
    while (!signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollMs ?? POLL_MS)
        wake = () => { clearTimeout(timer); resolve() }
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
      if (options.signal.aborted) throw options.signal.reason
      try {
        job = await client.getJson<JobView>(`/api/jobs/${id}`, { signal: options.signal })
      } catch (err) {
        if (options.signal.aborted) throw err
        continue
      }
      report(job)
      if (FINAL_VERDICTS.has(job.verdict)) return { job, final: true }
    }
    return { job, final: FINAL_VERDICTS.has(job.verdict) }
  } finally {
    clearTimeout(deadline)
    options.signal.removeEventListener('abort', onCallerAbort)
    stop.abort()
    await events
  }
}

/** One line of progress and when it happened (ms since the epoch, the writer's clock). */
interface ProgressEvent {
  at: number
  /** Orders events with equal times: what caused another comes first. */
  rank: number
  line: string
}

const CLAIM = 0
const RESULT = 1
const VERDICT = 2
/** A platform's state now (a reason for waiting): after everything that happened. */
const STATE = 3
const JOB = 4

/**
 * What a person watching wants to hear about — claims, results, verdicts,
 * reasons for waiting — in the order it happened: by the time each entry was
 * written, a builder's result never before its own claim, a verdict after the
 * results that decided it, a reason for waiting after everything known, and
 * the job's verdict last. (One read of the job often holds all of them, e.g.
 * a build that fails at once: the order of the view's fields is not the order
 * of events.)
 */
export function progressLines (job: JobView): string[] {
  const events: ProgressEvent[] = []
  for (const p of job.platforms) {
    const claimed = new Map<string, number>()
    let last = job.time
    for (const c of p.claims) {
      claimed.set(c.builder, Math.max(claimed.get(c.builder) ?? 0, c.time))
      last = Math.max(last, c.time)
      events.push({ at: c.time, rank: CLAIM, line: `${p.selector}: claimed by ${short(c.builder)}` })
    }
    for (const r of p.results) {
      const at = Math.max(r.time, claimed.get(r.builder) ?? r.time)
      last = Math.max(last, at)
      events.push({ at, rank: RESULT, line: `${p.selector}: ${short(r.builder)} ${r.status}${r.reason !== undefined ? ` (${r.reason})` : ''} in ${((r.end - r.start) / 1000).toFixed(1)} s` })
    }
    if (p.verdict === 'pending' || p.verdict === 'unmatched') {
      if (p.reason !== undefined) events.push({ at: Number.POSITIVE_INFINITY, rank: STATE, line: `${p.selector}: ${p.reason}` })
    } else {
      const why = p.verdict !== 'verified' && p.reason !== undefined ? ` — ${p.reason}` : ''
      events.push({ at: last, rank: VERDICT, line: `${p.selector}: ${verdictText(p.verdict)} (${p.agreeing}/${p.quorum} agree)${why}` })
    }
  }
  if (FINAL_VERDICTS.has(job.verdict)) events.push({ at: Number.POSITIVE_INFINITY, rank: JOB, line: `job ${short(job.id)}: ${verdictText(job.verdict)}${job.reason !== undefined ? ` — ${job.reason}` : ''}` })
  // A stable sort: equal events keep the view's order (platforms as the submitter listed them).
  return events.sort((a, b) => a.at - b.at || a.rank - b.rank).map((e) => e.line)
}
