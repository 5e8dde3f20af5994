import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import type { DiagnosisBody } from '../bodies.js'
import { MAX_SUMMARY_LENGTH } from '../constants.js'
import { compareArtifacts } from '../diagnosis/index.js'
import { rank } from '../rendezvous.js'
import { shortKey } from '../verdict.js'
import type { JobView, PlatformView, ResultView } from '../view.js'
import type { BlobFetcher, JobBlobs } from './ports.js'

const log = componentLogger('jobs:diagnoser')

/** Largest artifact or log fetched to compare. */
const MAX_COMPARED_BYTES = 512 * 1024 * 1024
/** If the first-ranked builder has not published a diagnosis after this long, the next one does. */
export const DIAGNOSIS_HANDOVER_MS = 30_000

/** What one diagnosis compares: our copy against one of the other side's. */
export interface DiagnosisPlan {
  job: JobView
  platform: PlatformView
  mine: ResultView
  theirs: ResultView
  /** The artifact path compared, or undefined to compare the two logs. */
  file: string | undefined
  files: string[]
}

/**
 * Whether this node should diagnose a mismatching platform now, and what to
 * compare. One builder per mismatch does it: the first, by rendezvous rank,
 * of the builders in the disagreeing groups; each next one takes over after
 * DIAGNOSIS_HANDOVER_MS more without a diagnosis.
 */
export function planDiagnosis (job: JobView, platform: PlatformView, self: string, now: number): DiagnosisPlan | undefined {
  if (platform.verdict !== 'mismatch' || platform.mismatch === undefined) return undefined
  if (job.diagnoses.some((d) => d.platform === platform.selector)) return undefined
  const groups = platform.mismatch.groups
  const builders = groups.flatMap((g) => g.builders)
  const place = rank(job.id, platform.selector, builders).indexOf(self)
  if (place < 0) return undefined
  const latest = Math.max(...platform.results.map((r) => r.time))
  if (now < latest + place * DIAGNOSIS_HANDOVER_MS) return undefined
  const mine = platform.results.find((r) => r.builder === self && r.latest)
  const otherGroup = groups.find((g) => !g.builders.includes(self))
  const theirs = otherGroup === undefined ? undefined : platform.results.find((r) => r.builder === otherGroup.builders[0] && r.latest)
  if (mine === undefined || theirs === undefined) return undefined
  const theirPaths = new Map(theirs.artifacts.map((a) => [a.path, a.sha256]))
  const file = platform.mismatch.files.find((path) => {
    const ours = mine.artifacts.find((a) => a.path === path)
    return ours !== undefined && theirPaths.has(path) && theirPaths.get(path) !== ours.sha256
  })
  if (file === undefined && (mine.log === null || theirs.log === null)) return undefined
  return { job, platform, mine, theirs, file, files: file !== undefined ? [file] : [] }
}

/**
 * Carry out a plan: fetch the other side's copy, compare (diffoscope when
 * installed, else the built-in diff), keep the report as a blob, and return
 * the `diagnosis` body to publish.
 */
export async function diagnose (plan: DiagnosisPlan, blobs: JobBlobs, fetcher: BlobFetcher, signal: AbortSignal): Promise<DiagnosisBody> {
  const { mine, theirs, file } = plan
  const ourHash = file !== undefined ? mine.artifacts.find((a) => a.path === file)!.sha256 : mine.log!
  const theirHash = file !== undefined ? theirs.artifacts.find((a) => a.path === file)!.sha256 : theirs.log!
  for (const [hash, holder] of [[ourHash, mine.builder], [theirHash, theirs.builder]] as const) {
    if (!(await blobs.has(hash))) await fetcher.fetch(hash, { fromAuthors: [holder], maxBytes: MAX_COMPARED_BYTES, signal })
  }
  const what = file ?? 'the build log'
  const report = await compareArtifacts(
    { path: blobs.path(ourHash), label: `${shortKey(mine.builder)} (${mine.status})` },
    { path: blobs.path(theirHash), label: `${shortKey(theirs.builder)} (${theirs.status})` }
  )
  const header = [
    `buildhaus mismatch diagnosis`,
    `job:      ${plan.job.id} (${plan.job.name})`,
    `platform: ${plan.platform.selector}`,
    `compared: ${what}`,
    `builder A: ${mine.builder} — status ${mine.status}, sha256 ${ourHash}`,
    `builder B: ${theirs.builder} — status ${theirs.status}, sha256 ${theirHash}`,
    `tool:     ${report.tool}`,
    `summary:  ${report.summary}`,
    ''
  ].join('\n')
  const stored = await blobs.put(Buffer.from(`${header}\n${report.text}`))
  log('diagnosed %s/%s: %s', plan.job.id, plan.platform.selector, report.summary)
  return {
    job: plan.job.id,
    platform: plan.platform.selector,
    report: stored.hash,
    summary: `${what}: ${report.summary}`.slice(0, MAX_SUMMARY_LENGTH),
    builders: [mine.builder, theirs.builder],
    files: plan.files
  }
}

export function describeDiagnosisFailure (plan: DiagnosisPlan, err: unknown): string {
  return `could not diagnose ${plan.job.id}/${plan.platform.selector}: ${describeError(err)}`
}
