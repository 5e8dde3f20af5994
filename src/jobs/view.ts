import type { Artifact, BuildEnv, JobBody, ResultEnvironment, ResultStatus, StepResult } from './bodies.js'

/**
 * The state of a job as the fold derives it from the log. Plain JSON data
 * (no Sets, Maps or class instances): the API and the dashboard serialise it
 * as it is, and equal inputs give byte-identical JSON.
 */

export type PlatformVerdict = 'pending' | 'verified' | 'failed' | 'mismatch' | 'unmatched'
export type JobVerdict = PlatformVerdict | 'cancelled'
export type CrossPlatformVerdict = 'agree' | 'mismatch' | 'pending' | 'none'

export interface ClaimView {
  builder: string
  /** Expiry, ms since the epoch, as the claimant wrote it. */
  lease: number
  /** The claimant's wall time when it claimed. */
  time: number
  entry: string
  /**
   * The reader's policy counts this claimant (a member, or on the trust
   * list): only such claims hold a slot or make anyone yield.
   */
  trusted: boolean
}

export interface ResultView {
  builder: string
  status: ResultStatus
  reason?: string
  steps: StepResult[]
  log: string | null
  logSize: number
  artifacts: Artifact[]
  env: BuildEnv
  /** The environment it was built in (absent: the builder's host). */
  environment?: ResultEnvironment
  start: number
  end: number
  /** The builder's wall time when it published. */
  time: number
  entry: string
  /** Its signature of the platform's provenance statement (hex), on a pass with artifacts. */
  provenance?: string
  /** The reader's policy believes this builder. */
  trusted: boolean
  /** The builder's latest non-refused result on this platform (by its seq): the one that can vote. */
  latest: boolean
  /** This result is one of the platform's votes: latest, and trusted. */
  counted: boolean
  /**
   * Whether this builder's latest non-refused result matches the deciding
   * group (computed for untrusted builders too, for reputation); null when
   * no group decided or this result is not the builder's latest.
   */
  agrees: boolean | null
}

/** Builders that reported the same outcome: the same status and the same (path, sha256) list. */
export interface OutcomeGroup {
  builders: string[]
  status: ResultStatus
  artifacts: Artifact[]
}

export interface MismatchView {
  statusDiffers: boolean
  /** Paths whose hashes differ between groups or that some group lacks. */
  files: string[]
  groups: OutcomeGroup[]
}

export interface PlatformView {
  selector: string
  labels: string[]
  replicas: number
  /** The environment the job asks this platform to be built in (absent: builders' hosts). */
  environment?: string
  /** Agreeing distinct builders needed, under the reader's policy. */
  quorum: number
  verdict: PlatformVerdict
  reason?: string
  /** Distinct builders in the deciding group, or in the largest group while undecided. */
  agreeing: number
  /** The deciding group's artifacts (verified or failed platforms). */
  artifacts?: Artifact[]
  /** The environment of the deciding group's results (its first builder's), when they were built in one. */
  decidedEnvironment?: ResultEnvironment
  claims: ClaimView[]
  results: ResultView[]
  mismatch?: MismatchView
}

export interface CrossPlatformFile {
  path: string
  /** selector → sha256, for each verified platform that produced the file. */
  hashes: Record<string, string>
  agree: boolean
}

export interface CrossPlatformView {
  verdict: CrossPlatformVerdict
  reason?: string
  files: CrossPlatformFile[]
}

export interface DiagnosisView {
  platform: string
  /** A cross-platform diagnosis: the platform compared with `platform`. */
  versus?: string
  /** sha256 of the report blob. */
  report: string
  summary: string
  builders: string[]
  files: string[]
  author: string
  time: number
  entry: string
}

export interface JobView {
  id: string
  name: string
  /** The job entry's author. */
  submitter: string
  time: number
  clock: number
  source: string
  sourceSize: number
  spec: JobBody
  cancelled: boolean
  cancelReason?: string
  /** Job level: cancelled, else mismatch > failed > unmatched > pending > verified. */
  verdict: JobVerdict
  reason?: string
  platforms: PlatformView[]
  crossPlatform: CrossPlatformView
  diagnoses: DiagnosisView[]
  /** Ids of the job entry and every entry referring to it, in fold order. */
  entries: string[]
  /**
   * Set by a node (not the fold) on a job a watch made for a release that
   * already had an earlier job: the id of that job, which stands; this one
   * is never built.
   */
  duplicateOf?: string
}

/** What live presence adds to a pending platform (see explainUnmatched). */
export interface LivenessNote {
  verdict: 'unmatched' | 'pending'
  reason: string
}

/** What every summary of a platform starts with (API lists, the grid, audit reports). */
export type PlatformHeadline = Pick<PlatformView, 'selector' | 'verdict' | 'reason' | 'replicas' | 'quorum' | 'agreeing'>

export function platformHeadline (p: PlatformView): PlatformHeadline {
  return {
    selector: p.selector,
    verdict: p.verdict,
    ...(p.reason !== undefined ? { reason: p.reason } : {}),
    replicas: p.replicas,
    quorum: p.quorum,
    agreeing: p.agreeing
  }
}

/** What every summary of a job starts with (API lists, the grid, audit reports). */
export type JobHeadline = Pick<JobView, 'id' | 'name' | 'submitter' | 'time' | 'verdict' | 'reason'>

export function jobHeadline (view: JobView): JobHeadline {
  return {
    id: view.id,
    name: view.name,
    submitter: view.submitter,
    time: view.time,
    verdict: view.verdict,
    ...(view.reason !== undefined ? { reason: view.reason } : {})
  }
}
