import type { TrustPolicy } from './trust.js'
import type { JobView } from './view.js'

/**
 * A builder's standing, computed from the public log through the fold and
 * never stored: every node and auditor holding the same entries computes the
 * same figures under the same policy.
 */
export interface BuilderReputation {
  builder: string
  /** Slots (job × platform) where this builder has a non-refused result. */
  results: number
  /** Its latest result was in the group that decided the platform. */
  agreed: number
  /** A group decided the platform and this builder's result was not in it. */
  disagreed: number
  /** Nothing decided the platform (pending or mismatch). */
  undecided: number
  /**
   * (agreed + 1) / (agreed + disagreed + 2): Laplace's rule of succession, the
   * expected chance its next decided result agrees. A newcomer starts at 0.5;
   * one disagreement alone drops it to 0.33, and a long record moves it only
   * slowly. Undecided slots say nothing either way and do not count.
   */
  score: number
}

/** Per builder, sorted by key. Counts untrusted builders too: reputation is how a reader decides whom to add. */
export function computeReputation (views: Iterable<JobView>): BuilderReputation[] {
  const byBuilder = new Map<string, BuilderReputation>()
  for (const view of views) {
    for (const platform of view.platforms) {
      for (const result of platform.results) {
        // One vote per builder and slot: its latest non-refused result.
        if (!result.latest) continue
        let rep = byBuilder.get(result.builder)
        if (rep === undefined) byBuilder.set(result.builder, rep = { builder: result.builder, results: 0, agreed: 0, disagreed: 0, undecided: 0, score: 0 })
        rep.results++
        if (result.agrees === true) rep.agreed++
        else if (result.agrees === false) rep.disagreed++
        else rep.undecided++
      }
    }
  }
  return [...byBuilder.values()]
    .map((rep) => ({ ...rep, score: (rep.agreed + 1) / (rep.agreed + rep.disagreed + 2) }))
    .sort((a, b) => (a.builder < b.builder ? -1 : a.builder > b.builder ? 1 : 0))
}

/** The score of a builder with no record: the prior of computeReputation. */
export const NEWCOMER_SCORE = 0.5

/**
 * A policy that also excludes builders scoring below `minScore`. No
 * circularity: the scores come from views folded under `base` (which this
 * never changes but for `excluded`), so apply it once:
 * `policyWithReputation(base, computeReputation(foldAll(entries, base)), 0.4)`.
 * Builders without a record score NEWCOMER_SCORE.
 */
export function policyWithReputation (base: TrustPolicy, reputations: Iterable<BuilderReputation>, minScore: number): TrustPolicy {
  const excluded = new Set(base.excluded ?? [])
  for (const rep of reputations) if (rep.score < minScore) excluded.add(rep.builder)
  return { ...base, excluded }
}
