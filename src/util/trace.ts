import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Timestamps along a job's critical path, for benches only (bench/user.ts's
 * `BENCH_TRACE`): off unless BUILDHAUS_TRACE_DIR is set, and then kept in
 * memory and written once, at exit, to `trace-<pid>.txt` in that directory
 * (one line a point: wall-clock ms with µs, what, an id). Never on in a
 * node a user runs: a point costs a string in an array that only grows.
 */
const dir = process.env.BUILDHAUS_TRACE_DIR
export const tracing = dir !== undefined && dir !== ''
const points: string[] = []
/** Bounded all the same: a long run keeps its first points only. */
const MAX_POINTS = 200_000

if (tracing) {
  process.once('exit', () => {
    if (points.length > 0) writeFileSync(join(dir!, `trace-${process.pid}.txt`), points.join('\n') + '\n')
  })
}

/** Now, as wall-clock milliseconds with sub-millisecond precision. */
export function traceNow (): number {
  return performance.timeOrigin + performance.now()
}

/** The job an entry is about (a job entry's own id), for tracing. */
export function jobOfEntry (entry: { id: string, entry: { type: string, body: unknown } }): string {
  const body = entry.entry.body as { job?: unknown } | null
  return entry.entry.type === 'job' || typeof body?.job !== 'string' ? entry.id : body.job
}

/** Note a point: `what` happened to `id` (an entry or job id, shortened) at `at` (default now). */
export function trace (what: string, id: string, at = traceNow()): void {
  if (!tracing || points.length >= MAX_POINTS) return
  points.push(`${at.toFixed(3)} ${what} ${id.slice(0, 16)}`)
}
