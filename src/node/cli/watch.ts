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
export async function watchJob (client: NodeClient, id: string, options: { deadline: number, signal: AbortSignal, progress?: (line: string) => void }): Promise<WatchResult> {
  const seen = new Set<string>()
  let job = await client.getJson<JobView>(`/api/jobs/${id}`, { signal: options.signal })
  const report = (view: JobView): void => {
    if (options.progress === undefined) return
    for (const line of progressLines(view)) {
      if (seen.has(line)) continue
      seen.add(line)
      options.progress(line)
    }
  }
  report(job)
  if (FINAL_VERDICTS.has(job.verdict)) return { job, final: true }

  // One controller that the caller's signal, the deadline and our own return all abort. (Not
  // AbortSignal.any: the event stream then sometimes missed the abort and the watch never returned.)
  const stop = new AbortController()
  const signal = stop.signal
  const onCallerAbort = (): void => { stop.abort(options.signal.reason) }
  if (options.signal.aborted) onCallerAbort()
  else options.signal.addEventListener('abort', onCallerAbort, { once: true })
  const deadline = setTimeout(() => { stop.abort(new DOMException('the watch deadline passed', 'TimeoutError')) }, Math.max(0, options.deadline - Date.now()))
  let wake: (() => void) | undefined
  // Events only wake the loop below; every read of the job happens there.
  const events = (async () => {
    let current = ''
    try {
      for await (const line of client.stream('/api/events', { signal })) {
        if (line.startsWith('event: ')) current = line.slice(7)
        else if (line.startsWith('data: ') && current === 'job' && line.includes(id)) wake?.()
      }
    } catch {
      // The poll below carries on without events.
    }
  })()
  try {
    while (!signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS)
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

/** What a person watching wants to hear about: claims, results, verdicts, reasons for waiting. */
function progressLines (job: JobView): string[] {
  const lines: string[] = []
  for (const p of job.platforms) {
    if (p.reason !== undefined && p.verdict !== 'verified') lines.push(`${p.selector}: ${p.reason}`)
    for (const c of p.claims) lines.push(`${p.selector}: claimed by ${short(c.builder)}`)
    for (const r of p.results) lines.push(`${p.selector}: ${short(r.builder)} ${r.status}${r.reason !== undefined ? ` (${r.reason})` : ''} in ${((r.end - r.start) / 1000).toFixed(1)} s`)
    if (p.verdict !== 'pending' && p.verdict !== 'unmatched') lines.push(`${p.selector}: ${verdictText(p.verdict)} (${p.agreeing}/${p.quorum} agree)`)
  }
  if (FINAL_VERDICTS.has(job.verdict)) lines.push(`job ${short(job.id)}: ${verdictText(job.verdict)}${job.reason !== undefined ? ` — ${job.reason}` : ''}`)
  return lines
}
