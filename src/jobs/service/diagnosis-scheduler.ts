import { BuildhausError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import { slotKey } from '../selector.js'
import type { JobView } from '../view.js'
import { describeDiagnosisFailure, diagnose, planCrossDiagnosis, planDiagnosis, type DiagnosisPlan } from './diagnoser.js'
import type { BlobFetcher, JobBlobs, JobLedger } from './ports.js'
import { remember } from './remember.js'

const log = componentLogger('jobs:diagnosis')

/** The longest one diagnosis may take (fetching both sides and comparing). */
const DIAGNOSIS_TIMEOUT_MS = 5 * 60_000
/** After a failed diagnosis, a later plan may try the same mismatch again after this long. */
const RETRY_AFTER_MS = 30_000

export interface DiagnosisSchedulerParts {
  /** This node's author key. */
  self: string
  blobs: JobBlobs
  fetcher: BlobFetcher
  ledger: Pick<JobLedger, 'append'>
  /** Told each diagnosis published. */
  onPublished?: () => void
}

/**
 * Which mismatches this node diagnoses, and running those diagnoses: one per
 * mismatching platform (and one per cross-platform mismatch), by the builder
 * whose turn it is (see planDiagnosis), published as a `diagnosis` entry. A
 * failure lets a later plan try again. The job service calls `plan()` at
 * each of its plans and `stop()` when it stops.
 */
export class DiagnosisScheduler {
  private readonly parts: DiagnosisSchedulerParts
  /** Mismatches (slot keys, or `<job>/cross-platform`) being or already diagnosed by this node. */
  private readonly diagnosing = new Set<string>()
  private readonly inFlight = new Set<Promise<void>>()
  /** Aborted by stop(), replaced so that a service started again diagnoses again. */
  private stopping = new AbortController()

  constructor (parts: DiagnosisSchedulerParts) {
    this.parts = parts
  }

  /** A mismatch this node took part in and nobody has diagnosed yet: it may be this node's to diagnose. */
  mayDiagnose (view: JobView): boolean {
    const self = this.parts.self
    const platformMismatch = view.platforms.some((p) => p.verdict === 'mismatch' && !view.diagnoses.some((d) => d.platform === p.selector && d.versus === undefined) &&
      (p.mismatch?.groups.some((g) => g.builders.includes(self)) ?? false))
    const crossMismatch = view.crossPlatform.verdict === 'mismatch' && !view.diagnoses.some((d) => d.versus !== undefined) &&
      view.platforms.some((p) => p.results.some((r) => r.builder === self))
    return platformMismatch || crossMismatch
  }

  /** Start the diagnoses that are this node's to do now among `views`. */
  plan (views: JobView[], now: number): void {
    for (const view of views) {
      for (const platform of view.platforms) {
        if (platform.verdict !== 'mismatch') continue
        this.start(slotKey(view.id, platform.selector), () => planDiagnosis(view, platform, this.parts.self, now))
      }
      if (view.crossPlatform.verdict === 'mismatch') this.start(`${view.id}/cross-platform`, () => planCrossDiagnosis(view, this.parts.self, now))
    }
  }

  /** Abort the diagnoses in flight and wait for them to end. */
  async stop (): Promise<void> {
    const stopping = this.stopping
    this.stopping = new AbortController()
    stopping.abort(new BuildhausError('the node is stopping'))
    await Promise.allSettled([...this.inFlight])
  }

  /** Diagnose once per key, if the plan says it is this node's turn; a failure lets a later plan try again. */
  private start (key: string, plan: () => DiagnosisPlan | undefined): void {
    if (this.diagnosing.has(key)) return
    const planned = plan()
    if (planned === undefined) return
    remember(this.diagnosing, key)
    const stopping = this.stopping.signal
    const signal = AbortSignal.any([AbortSignal.timeout(DIAGNOSIS_TIMEOUT_MS), stopping])
    const run = diagnose(planned, this.parts.blobs, this.parts.fetcher, signal)
      .then(async (body) => {
        await this.parts.ledger.append('diagnosis', body)
        this.parts.onPublished?.()
      })
      .catch((err: unknown) => {
        if (stopping.aborted) return
        log.error(describeDiagnosisFailure(planned, err))
        // Let a later plan try again (the other side may have been unreachable).
        setTimeout(() => { this.diagnosing.delete(key) }, RETRY_AFTER_MS).unref?.()
      })
      .finally(() => { this.inFlight.delete(run) })
    this.inFlight.add(run)
  }
}
