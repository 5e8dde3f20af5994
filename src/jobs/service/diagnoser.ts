import { describeDifferences, differingPackages, parseManifest, packageVersions, type EnvironmentManifest } from '../../environments/index.js'
import { describeError } from '../../util/errors.js'
import { lazily } from '../../util/lazy.js'
import { componentLogger } from '../../util/logger.js'
import type { DiagnosisBody } from '../bodies.js'
import { MAX_SUMMARY_LENGTH } from '../constants.js'
import { rank } from '../rendezvous.js'
import { shortKey } from '../verdict.js'
import type { JobView, PlatformView, ResultView } from '../view.js'
import type { BlobFetcher, JobBlobs } from './ports.js'

/** The comparison (text and byte diffs, tar and gzip walking) loads at the first mismatch a node diagnoses, not with every node. */
const diagnosis = lazily('the artifact comparison of a mismatch diagnosis', async () => await import('../diagnosis/index.js'))

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
  /** A cross-platform diagnosis: the other side's platform (`platform` is this node's). */
  versus?: PlatformView
}

/**
 * Whether this node should diagnose a mismatching platform now, and what to
 * compare. One builder per mismatch does it: the first, by rendezvous rank,
 * of the builders in the disagreeing groups; each next one takes over after
 * DIAGNOSIS_HANDOVER_MS more without a diagnosis.
 */
export function planDiagnosis (job: JobView, platform: PlatformView, self: string, now: number): DiagnosisPlan | undefined {
  if (platform.verdict !== 'mismatch' || platform.mismatch === undefined) return undefined
  if (job.diagnoses.some((d) => d.platform === platform.selector && d.versus === undefined)) return undefined
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
 * Whether this node should diagnose a cross-platform mismatch now (a file
 * declared independent differs between two verified platforms), and what
 * to compare: its own copy against the other platform's, and the two
 * environments. One builder of the two platforms does it, by rendezvous
 * rank, the next after DIAGNOSIS_HANDOVER_MS more without one.
 */
export function planCrossDiagnosis (job: JobView, self: string, now: number): DiagnosisPlan | undefined {
  if (job.crossPlatform.verdict !== 'mismatch' || job.diagnoses.some((d) => d.versus !== undefined)) return undefined
  const file = job.crossPlatform.files.find((f) => !f.agree)
  if (file === undefined) return undefined
  const selectors = job.platforms.map((p) => p.selector).filter((s) => file.hashes[s] !== undefined)
  const first = selectors[0]
  const second = selectors.find((s) => file.hashes[s] !== file.hashes[first!])
  if (first === undefined || second === undefined) return undefined
  const sides = [first, second].map((selector) => {
    const platform = job.platforms.find((p) => p.selector === selector)!
    const results = platform.results.filter((r) => r.latest && r.counted && r.artifacts.some((a) => a.path === file.path && a.sha256 === file.hashes[selector]))
    return { platform, results }
  })
  const builders = [...new Set(sides.flatMap((s) => s.results.map((r) => r.builder)))]
  const place = rank(job.id, `${first}~${second}`, builders).indexOf(self)
  if (place < 0) return undefined
  const latest = Math.max(...sides.flatMap((s) => s.results.map((r) => r.time)))
  if (now < latest + place * DIAGNOSIS_HANDOVER_MS) return undefined
  const mineIndex = sides.findIndex((s) => s.results.some((r) => r.builder === self))
  const mySide = sides[mineIndex]!
  const otherSide = sides[1 - mineIndex]!
  const mine = mySide.results.find((r) => r.builder === self)!
  const theirs = otherSide.results.find((r) => r.builder !== self) ?? otherSide.results[0]
  if (theirs === undefined) return undefined
  return { job, platform: mySide.platform, mine, theirs, file: file.path, files: [file.path], versus: otherSide.platform }
}

/**
 * Carry out a plan: fetch the other side's copy, compare (diffoscope, in a
 * sandbox, when installed; else the built-in diff), keep the report as a blob, and return
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
  const environments = await compareEnvironments(plan, blobs, fetcher, signal)
  const report = await (await diagnosis()).compareArtifacts(
    { path: blobs.path(ourHash), label: `${shortKey(mine.builder)} (${mine.status})` },
    { path: blobs.path(theirHash), label: `${shortKey(theirs.builder)} (${theirs.status})` }
  )
  const header = [
    `buildhaus mismatch diagnosis`,
    `job:      ${plan.job.id} (${plan.job.name})`,
    `platform: ${plan.platform.selector}${plan.versus !== undefined ? ` vs ${plan.versus.selector}` : ''}`,
    `compared: ${what}`,
    `builder A: ${mine.builder} — status ${mine.status}, sha256 ${ourHash}`,
    `builder B: ${theirs.builder} — status ${theirs.status}, sha256 ${theirHash}`,
    `tool:     ${report.tool}`,
    `summary:  ${report.summary}`,
    ...(environments !== undefined ? [`environments: ${environments.summary}`] : []),
    ''
  ].join('\n')
  const stored = await blobs.put(Buffer.from(`${header}\n${environments !== undefined ? `${environments.text}\n` : ''}${report.text}`))
  log('diagnosed %s/%s: %s', plan.job.id, plan.platform.selector, report.summary)
  return {
    job: plan.job.id,
    platform: plan.platform.selector,
    report: stored.hash,
    summary: `${environments !== undefined ? `${environments.summary}; ` : ''}${what}: ${report.summary}`.slice(0, MAX_SUMMARY_LENGTH),
    builders: [...new Set([mine.builder, theirs.builder])],
    files: plan.files,
    ...(plan.versus !== undefined ? { versus: plan.versus.selector } : {})
  }
}

/** Largest manifest fetched to compare. */
const MAX_MANIFEST_FETCH_BYTES = 4 * 1024 * 1024

/**
 * Compare the environments the two results were built in: the same one
 * (then the disagreement is the build's own nondeterminism, and the file
 * diff tells where), or the packages whose versions differ, from both
 * manifests in full. Undefined when neither side used an environment.
 */
async function compareEnvironments (plan: DiagnosisPlan, blobs: JobBlobs, fetcher: BlobFetcher, signal: AbortSignal): Promise<{ summary: string, text: string } | undefined> {
  const { mine, theirs } = plan
  const a = mine.environment
  const b = theirs.environment
  if (a === undefined && b === undefined) return undefined
  const label = (side: ResultView): string => side.environment === undefined ? 'the host' : `${side.environment.name} ${side.environment.manifest}`
  const heading = ['Environments', `  A (${shortKey(mine.builder)}): ${label(mine)}`, `  B (${shortKey(theirs.builder)}): ${label(theirs)}`]
  if (a !== undefined && b !== undefined && a.manifest === b.manifest) {
    return {
      summary: `the same environment on both sides (${a.name} ${a.manifest.slice(0, 12)}): the build is not deterministic`,
      text: [...heading, '  identical: the difference below comes from the build itself', ''].join('\n')
    }
  }
  if (a === undefined || b === undefined) {
    return { summary: `environments differ: ${label(mine).split(' ')[0]!} vs ${label(theirs).split(' ')[0]!}`, text: [...heading, ''].join('\n') }
  }
  let manifests: [EnvironmentManifest, EnvironmentManifest]
  try {
    manifests = [await manifestOf(a.manifest, mine.builder, blobs, fetcher, signal), await manifestOf(b.manifest, theirs.builder, blobs, fetcher, signal)]
  } catch (err) {
    // Without the manifests, the versions the results record still say something.
    const recorded = differingPackages([new Map(Object.entries(a.packages)), new Map(Object.entries(b.packages))], plan.job.spec.packages ?? [])
    return {
      summary: `environments differ${recorded.length > 0 ? `: ${describeDifferences(recorded, 6)}` : ''} (manifests not compared: ${describeError(err)})`,
      text: [...heading, ''].join('\n')
    }
  }
  const differences = differingPackages(manifests.map(packageVersions), plan.job.spec.packages ?? [])
  const lines = differences.map((d) => `  ${d.name}: ${d.versions.map((v) => v ?? '(none)').join('  vs  ')}`)
  const base = manifests[0].date !== manifests[1].date || manifests[0].origin !== manifests[1].origin
    ? [`  bases: ${manifests[0].origin} ${manifests[0].suite ?? ''} of ${manifests[0].date} vs ${manifests[1].origin} ${manifests[1].suite ?? ''} of ${manifests[1].date}`]
    : []
  if (differences.length === 0) {
    return {
      summary: `the environments install the same packages (their manifests differ in origin or date only): the build is not deterministic`,
      text: [...heading, ...base, '  the same packages and versions', ''].join('\n')
    }
  }
  return {
    summary: `environments differ in ${differences.length} package${differences.length > 1 ? 's' : ''}: ${describeDifferences(differences, 6)}`,
    text: [...heading, ...base, `  ${differences.length} packages differ (A vs B):`, ...lines, ''].join('\n')
  }
}

async function manifestOf (hash: string, holder: string, blobs: JobBlobs, fetcher: BlobFetcher, signal: AbortSignal): Promise<EnvironmentManifest> {
  if (!(await blobs.has(hash))) await fetcher.fetch(hash, { fromAuthors: [holder], maxBytes: MAX_MANIFEST_FETCH_BYTES, signal })
  return parseManifest(await blobs.readBytes(hash, MAX_MANIFEST_FETCH_BYTES))
}

export function describeDiagnosisFailure (plan: DiagnosisPlan, err: unknown): string {
  return `could not diagnose ${plan.job.id}/${plan.platform.selector}: ${describeError(err)}`
}
