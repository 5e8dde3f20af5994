import { createHash } from 'node:crypto'
import type { Admission } from '../admission/index.js'
import type { LedgerStore } from '../store.js'
import { MAX_HEADS, SUMMARY_BUCKETS, SUMMARY_BUCKETS_FROM_CHAINS } from './constants.js'
import type { HeadTriple } from './frames.js'

/**
 * What one side of a sync session announces: its chain heads (in author
 * order) and the authors it knows to equivocate, and their digests (see
 * docs/FORMAT.md, "Sync"). Two sides with the same `all` hold the same heads
 * and know the same forks: they have nothing to exchange. Otherwise, when
 * both hold many chains, only the heads of the buckets whose digests differ
 * need to be sent.
 */
export interface HeadsSummary {
  heads: HeadTriple[]
  forked: string[]
  /** Digest over every bucket's digest; null when this side holds more chains than it may announce (MAX_HEADS). */
  all: string | null
  /** Each bucket's digest, when this side holds at least SUMMARY_BUCKETS_FROM_CHAINS chains. */
  buckets?: string[]
}

/** The bucket of an author: the first byte of its key. */
export function bucketOf (author: string): number {
  return Number.parseInt(author.slice(0, 2), 16)
}

/** The heads this side announces: all of them (or those in `filter`), members' first past MAX_HEADS. */
export async function collectHeads (
  store: Pick<LedgerStore, 'allHeads' | 'stats'>,
  filter: Set<string> | null,
  admission: Pick<Admission, 'standingOf'> | undefined,
  onOverflow: () => void
): Promise<{ heads: HeadTriple[], complete: boolean }> {
  const heads: HeadTriple[] = []
  let complete = true
  const collect = async (only?: 'member' | 'stranger'): Promise<void> => {
    for await (const [author, head] of store.allHeads()) {
      if (filter !== null && !filter.has(author)) continue
      if (only !== undefined && admission?.standingOf(author) !== only) continue
      if (heads.length >= MAX_HEADS) {
        complete = false
        onOverflow()
        return
      }
      heads.push([author, head.seq, head.id])
    }
  }
  // Past MAX_HEADS chains (strangers' keys are free), members' chains are announced first.
  if (filter === null && admission !== undefined && store.stats().authors > MAX_HEADS) {
    await collect('member')
    if (complete) await collect('stranger')
  } else {
    await collect()
  }
  return { heads, complete }
}

/**
 * Digest `heads` (in author order) and `forked`: per bucket, SHA-256 over
 * `<author> <seq> <id>\n` for each head, then `forked <author>\n` for each
 * equivocating author in it; `all` is SHA-256 over the 256 bucket digests'
 * bytes. A side that could not announce every head (`complete` false) sends
 * no digest: its peer would take a partial list for its whole log.
 */
export function summarize (heads: HeadTriple[], forked: string[], complete = true): HeadsSummary {
  if (!complete) return { heads, forked, all: null }
  const hashes = Array.from({ length: SUMMARY_BUCKETS }, () => createHash('sha256'))
  for (const [author, seq, id] of heads) hashes[bucketOf(author)]!.update(`${author} ${seq} ${id}\n`)
  for (const author of forked) hashes[bucketOf(author)]!.update(`forked ${author}\n`)
  const digests = hashes.map((hash) => hash.digest())
  const all = createHash('sha256')
  for (const digest of digests) all.update(digest)
  const summary: HeadsSummary = { heads, forked, all: all.digest('hex') }
  if (heads.length >= SUMMARY_BUCKETS_FROM_CHAINS) summary.buckets = digests.map((digest) => digest.toString('hex'))
  return summary
}

/**
 * The buckets whose heads the two sides must exchange: none when the digests
 * agree, the differing ones when both sent bucket digests, else every bucket
 * (null).
 */
export function bucketsToExchange (mine: HeadsSummary, theirs: { all: string | null, buckets?: string[] }): Set<number> | null {
  if (mine.all !== null && mine.all === theirs.all) return new Set()
  if (mine.buckets === undefined || theirs.buckets === undefined) return null
  const differing = new Set<number>()
  for (let bucket = 0; bucket < SUMMARY_BUCKETS; bucket++) {
    if (mine.buckets[bucket] !== theirs.buckets[bucket]) differing.add(bucket)
  }
  return differing
}
