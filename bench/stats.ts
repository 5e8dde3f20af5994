/**
 * The statistics every benchmark module reports, defined once so that a
 * "p95" means the same thing in every figure of `npm run bench`.
 */

/** Nearest-rank percentile of ascending `sorted` (p in 0..1): the smallest sample with at least p of them at or below it. */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

export function median (values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5)
}

export function round (value: number, digits = 1): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

export interface Spread { p50: number, p95: number, mean: number }

/** p50, p95 and mean of unsorted samples, rounded to `digits`. */
export function spread (samples: readonly number[], digits = 1): Spread {
  const sorted = [...samples].sort((a, b) => a - b)
  const mean = sorted.length === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length
  return { p50: round(percentile(sorted, 0.5), digits), p95: round(percentile(sorted, 0.95), digits), mean: round(mean, digits) }
}
