import picomatch from 'picomatch'
import type { Artifact, ResultEnvironment, ResultStatus } from './bodies.js'
import { describeEnvironments } from './environment-differences.js'
import type { CrossPlatformFile, CrossPlatformView, JobVerdict, MismatchView, OutcomeGroup, PlatformVerdict } from './view.js'

/** One builder's vote on a platform: its latest non-refused result, from a builder the reader trusts. */
export interface Ballot {
  builder: string
  status: ResultStatus
  artifacts: Artifact[]
  /** A few words on a failure (`step "test" exited 1`), for the reason. */
  detail?: string
}

export interface PlatformDecision {
  verdict: Exclude<PlatformVerdict, 'unmatched'>
  reason?: string
  /** Builders in the deciding group, or in the largest group while undecided. */
  agreeing: number
  /** The outcome key of the deciding group. */
  decidingKey?: string
  decided?: OutcomeGroup
  mismatch?: MismatchView
}

/** The outcome a ballot reports: its status and its sorted (path, sha256) list. Sizes follow from the hashes. */
export function outcomeKey (status: ResultStatus, artifacts: readonly Artifact[]): string {
  const files = artifacts.map((a) => [a.path, a.sha256] as const).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
  return JSON.stringify([status, files])
}

/** The first 8 hex digits of a key: enough to tell builders apart in a sentence. */
export function shortKey (key: string): string {
  return key.slice(0, 8)
}

const FAILURES: ReadonlySet<ResultStatus> = new Set(['fail', 'timeout', 'error'])

interface Group extends OutcomeGroup { key: string, details: Array<string | undefined> }

function groupBallots (ballots: readonly Ballot[]): Group[] {
  const byKey = new Map<string, Group>()
  for (const ballot of [...ballots].sort((a, b) => (a.builder < b.builder ? -1 : 1))) {
    const key = outcomeKey(ballot.status, ballot.artifacts)
    let group = byKey.get(key)
    if (group === undefined) {
      const artifacts = [...ballot.artifacts].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      group = { key, builders: [], status: ballot.status, artifacts, details: [] }
      byKey.set(key, group)
    }
    group.builders.push(ballot.builder)
    group.details.push(ballot.detail)
  }
  // Largest first; ties by key so the order never depends on input order.
  return [...byKey.values()].sort((a, b) => b.builders.length - a.builders.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

/** Paths on which the groups do not all carry the same hash (a group lacking the path differs). */
function differingFiles (groups: readonly OutcomeGroup[]): string[] {
  const paths = new Set<string>()
  for (const group of groups) for (const artifact of group.artifacts) paths.add(artifact.path)
  const differing: string[] = []
  for (const path of paths) {
    const hashes = groups.map((group) => group.artifacts.find((a) => a.path === path)?.sha256)
    if (hashes.some((hash) => hash === undefined || hash !== hashes[0])) differing.push(path)
  }
  return differing.sort()
}

function listFiles (files: readonly string[]): string {
  const shown = files.slice(0, 3).join(', ')
  return files.length > 3 ? `${shown} and ${files.length - 3} more` : shown
}

function plainGroup (group: Group): OutcomeGroup {
  return { builders: group.builders, status: group.status, artifacts: group.artifacts }
}

function disagreement (groups: readonly OutcomeGroup[], files: readonly string[]): string {
  const parts: string[] = []
  if (new Set(groups.map((g) => g.status)).size > 1) {
    parts.push(`the status: ${groups.map((g) => `${g.status} (${g.builders.map(shortKey).join(', ')})`).join(' vs ')}`)
  }
  if (files.length > 0) parts.push(listFiles(files))
  return parts.join(' and on ')
}

/**
 * A platform's verdict from its ballots (one per distinct builder):
 * - exactly one outcome reached by `quorum` builders decides: `verified` if
 *   it is a pass, `failed` if it is fail, timeout or error;
 * - two outcomes each reaching quorum contradict each other: `mismatch`
 *   (a majority of sybils must not outvote an independent quorum);
 * - no outcome reaches quorum, at least `replicas` builders reported and
 *   they differ: `mismatch`, naming who differs and on which files;
 * - otherwise `pending` (more results may still decide it).
 */
export function decidePlatform (ballots: readonly Ballot[], replicas: number, quorum: number): PlatformDecision {
  const groups = groupBallots(ballots)
  const reaching = groups.filter((g) => g.builders.length >= quorum)
  const largest = groups[0]?.builders.length ?? 0
  if (reaching.length === 1) {
    const winner = reaching[0]!
    const dissent = groups.filter((g) => g !== winner)
    const dissenters = dissent.flatMap((g) => g.builders)
    let reason = winner.status === 'pass'
      ? `${countOf(winner.builders.length, 'builder agrees', 'builders agree')} on the status and every artifact`
      : `${countOf(winner.builders.length, 'builder agrees', 'builders agree')}: ${winner.status}${winner.details[0] !== undefined ? ` (${winner.details[0]})` : ''}`
    if (dissenters.length > 0) {
      reason += `; outvoted: ${dissenters.map(shortKey).join(', ')} (${disagreement([winner, ...dissent], differingFiles([winner, ...dissent]))})`
    }
    return {
      verdict: winner.status === 'pass' ? 'verified' : FAILURES.has(winner.status) ? 'failed' : 'pending',
      reason,
      agreeing: winner.builders.length,
      decidingKey: winner.key,
      decided: plainGroup(winner)
    }
  }
  if (reaching.length > 1 || (groups.length > 1 && ballots.length >= replicas)) {
    const involved = groups.map(plainGroup)
    const files = differingFiles(involved)
    return {
      verdict: 'mismatch',
      reason: `builders disagree on ${disagreement(involved, files)}`,
      agreeing: largest,
      mismatch: { statusDiffers: new Set(groups.map((g) => g.status)).size > 1, files, groups: involved }
    }
  }
  return { verdict: 'pending', agreeing: largest }
}

/** Matches artifact paths against the job's globs; `dot: true` so `.dist-info/…` paths are not silently skipped. */
export function globMatcher (globs: readonly string[]): (path: string) => boolean {
  if (globs.length === 0) return () => false
  return picomatch([...globs], { dot: true })
}

export interface DecidedPlatform {
  selector: string
  verdict: PlatformVerdict
  /** The deciding group's artifacts when verified. */
  artifacts?: readonly Artifact[]
  /** The environment the deciding group built in. */
  decidedEnvironment?: ResultEnvironment
}

/**
 * Platform-independent artifacts (the job's `independent` globs) must hash the
 * same on every platform whose results were verified. A file only some
 * platforms produced is listed but is no disagreement. `pending` while a
 * platform is still undecided and nothing differs yet. A disagreement names
 * what differs between the platforms' environments (the job's `requested`
 * packages first).
 */
export function crossCheck (platforms: readonly DecidedPlatform[], independent: readonly string[], requested: readonly string[] = []): CrossPlatformView {
  if (independent.length === 0 || platforms.length < 2) return { verdict: 'none', files: [] }
  const matches = globMatcher(independent)
  const byPath = new Map<string, Record<string, string>>()
  for (const platform of platforms) {
    if (platform.verdict !== 'verified' || platform.artifacts === undefined) continue
    for (const artifact of platform.artifacts) {
      if (!matches(artifact.path)) continue
      let hashes = byPath.get(artifact.path)
      if (hashes === undefined) byPath.set(artifact.path, hashes = {})
      hashes[platform.selector] = artifact.sha256
    }
  }
  const files: CrossPlatformFile[] = [...byPath.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, hashes]) => ({ path, hashes, agree: new Set(Object.values(hashes)).size === 1 }))
  const differing = files.find((file) => !file.agree)
  if (differing !== undefined) {
    const sides = Object.entries(differing.hashes).map(([selector, hash]) => `${selector} ${hash.slice(0, 12)}`).join(' vs ')
    const others = files.filter((f) => !f.agree).length - 1
    const environments = describeEnvironments(Object.keys(differing.hashes).map((selector) => {
      const environment = platforms.find((p) => p.selector === selector)?.decidedEnvironment
      return { label: selector, ...(environment !== undefined ? { environment } : {}) }
    }), requested)
    return { verdict: 'mismatch', reason: `${differing.path} differs across platforms: ${sides}${others > 0 ? ` (and ${others} more file${others > 1 ? 's' : ''})` : ''}${environments !== undefined ? `; ${environments}` : ''}`, files }
  }
  if (platforms.some((p) => p.verdict === 'pending' || p.verdict === 'unmatched')) return { verdict: 'pending', files }
  const compared = files.filter((file) => Object.keys(file.hashes).length >= 2)
  if (compared.length === 0) return { verdict: 'none', reason: 'no platform-independent file was produced by two verified platforms', files }
  return { verdict: 'agree', files }
}

export interface VerdictInputs {
  cancelled: boolean
  cancelReason?: string
  platforms: ReadonlyArray<{ selector: string, verdict: PlatformVerdict, reason?: string }>
  crossPlatform: CrossPlatformView
}

/** The job's verdict: cancelled, else mismatch > failed > unmatched > pending > verified, with the first platform's reason. */
export function jobVerdict (inputs: VerdictInputs): { verdict: JobVerdict, reason?: string } {
  if (inputs.cancelled) {
    return { verdict: 'cancelled', reason: `cancelled by the submitter${inputs.cancelReason !== undefined ? `: ${inputs.cancelReason}` : ''}` }
  }
  const first = (verdict: PlatformVerdict) => inputs.platforms.find((p) => p.verdict === verdict)
  const withReason = (verdict: JobVerdict, platform: { selector: string, reason?: string }) =>
    ({ verdict, reason: `${platform.selector}: ${platform.reason ?? verdict}` })
  const mismatch = first('mismatch')
  if (mismatch !== undefined) return withReason('mismatch', mismatch)
  if (inputs.crossPlatform.verdict === 'mismatch') return { verdict: 'mismatch', reason: `cross-platform: ${inputs.crossPlatform.reason ?? 'artifacts differ'}` }
  const failed = first('failed')
  if (failed !== undefined) return withReason('failed', failed)
  const unmatched = first('unmatched')
  if (unmatched !== undefined) return withReason('unmatched', unmatched)
  if (first('pending') !== undefined) return { verdict: 'pending' }
  return { verdict: 'verified' }
}

/** `1 builder agrees`, `2 builders agree`. */
function countOf (n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}
