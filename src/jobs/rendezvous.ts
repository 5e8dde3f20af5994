import { createHash } from 'node:crypto'

/**
 * Rendezvous (highest random weight) hashing: every node ranks the candidates
 * for a job's platform slot the same way from the same inputs, with no
 * coordinator, and a node joining or leaving moves only the slots it ranks
 * first. The selector is part of the hash so that the platforms of one job
 * spread over different nodes when the same nodes offer several of them.
 */

/** sha256 over `jobId \n selector \n key` (ASCII), as hex: the candidate's weight for this slot. */
export function rendezvousScore (jobId: string, selector: string, key: string): string {
  return createHash('sha256').update(`${jobId}\n${selector}\n${key}`, 'utf8').digest('hex')
}

/** Candidates (author keys, duplicates dropped) by score, highest first. Equal-length hex compares like the numbers. */
export function rank (jobId: string, selector: string, candidates: Iterable<string>): string[] {
  return [...new Set(candidates)]
    .map((key) => ({ key, score: rendezvousScore(jobId, selector, key) }))
    .sort((a, b) => (a.score > b.score ? -1 : a.score < b.score ? 1 : a.key < b.key ? -1 : 1))
    .map((c) => c.key)
}
