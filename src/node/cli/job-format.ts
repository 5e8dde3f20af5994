import type { JobView, PlatformView } from '../../jobs/index.js'
import type { JobSummary } from '../api/routes/jobs.js'
import { formatAge, formatTable } from './table.js'

/** A key or id shortened for tables: enough to tell them apart, the full value is in --json. */
export function short (hex: string): string {
  return hex.slice(0, 12)
}

const MARK: Record<string, string> = {
  verified: 'verified',
  failed: 'FAILED',
  mismatch: 'MISMATCH',
  pending: 'pending',
  unmatched: 'unmatched',
  cancelled: 'cancelled'
}

export function verdictText (verdict: string): string {
  return MARK[verdict] ?? verdict
}

function platformCell (p: JobSummary['platforms'][number] | PlatformView): string {
  return `${p.selector}:${verdictText(p.verdict)} ${p.agreeing}/${p.quorum}`
}

/** `buildhaus-node jobs`: newest first, one row each. */
export function jobsTable (jobs: JobSummary[], now: number): string {
  const rows = jobs.map((j) => [short(j.id), j.name, verdictText(j.verdict), j.platforms.map(platformCell).join('  '), formatAge(now - j.time)])
  return formatTable(['JOB', 'NAME', 'VERDICT', 'PLATFORMS (verdict agreeing/quorum)', 'SUBMITTED'], rows)
}

function duration (ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** `buildhaus-node status JOB`: the verdicts, who built what, the hashes, and where the logs and reports are. */
export function jobReport (job: JobView, apiUrl: string): string {
  const lines: string[] = []
  lines.push(`job       ${job.id}`)
  lines.push(`name      ${job.name}`)
  lines.push(`submitter ${job.submitter}`)
  lines.push(`source    ${job.source} (${job.sourceSize} bytes)`)
  lines.push(`verdict   ${verdictText(job.verdict)}${job.reason !== undefined ? ` — ${job.reason}` : ''}`)
  if (job.crossPlatform.verdict !== 'none') {
    lines.push(`cross-platform ${job.crossPlatform.verdict}${job.crossPlatform.reason !== undefined ? ` — ${job.crossPlatform.reason}` : ''}`)
  }
  for (const p of job.platforms) {
    lines.push('')
    lines.push(`${p.selector}: ${verdictText(p.verdict)} (${p.agreeing} of ${p.quorum} needed agree, ${p.replicas} wanted)${p.reason !== undefined ? ` — ${p.reason}` : ''}`)
    if (p.environment !== undefined) lines.push(`  in environment ${p.environment}${job.spec.packages !== undefined ? ` + ${job.spec.packages.join(', ')}` : ''}`)
    if (p.mismatch !== undefined) {
      lines.push(`  differing: ${p.mismatch.files.length > 0 ? p.mismatch.files.join(', ') : '(no files)'}${p.mismatch.statusDiffers ? '; the statuses differ' : ''}`)
    }
    const running = p.claims.filter((c) => !p.results.some((r) => r.builder === c.builder))
    for (const c of running) lines.push(`  ${short(c.builder)}  claimed ${formatAge(Date.now() - c.time)}`)
    for (const r of p.results) {
      const flag = r.agrees === false ? '  (disagrees)' : r.trusted ? '' : '  (untrusted)'
      lines.push(`  ${short(r.builder)}  ${r.status}${r.reason !== undefined ? ` (${r.reason})` : ''}  ${duration(r.end - r.start)}${flag}`)
      for (const s of r.steps) lines.push(`      step ${s.name}: exit ${s.exit ?? s.signal ?? '?'}, ${duration(s.ms)}`)
      if (r.environment !== undefined) lines.push(`      environment ${r.environment.name} ${r.environment.manifest} (manifest ${apiUrl}/api/blobs/${r.environment.manifest})`)
      for (const a of r.artifacts) lines.push(`      ${a.sha256}  ${a.path} (${a.size} bytes)`)
      if (r.log !== null) lines.push(`      log ${apiUrl}/api/blobs/${r.log}`)
    }
    for (const d of job.diagnoses.filter((d) => d.platform === p.selector)) {
      lines.push(`  diagnosis${d.versus !== undefined ? ` (vs ${d.versus})` : ''}: ${d.summary}`)
      lines.push(`      report ${apiUrl}/api/blobs/${d.report}`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** A time as the log's authors claimed it, in UTC to the second. */
export function when (ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`
}

/** A builder as a reader knows it: the trust list's name beside the short key. */
export function builderName (key: string, names: ReadonlyMap<string, string>): string {
  const name = names.get(key)
  return name === undefined ? short(key) : `${short(key)} (${name})`
}
