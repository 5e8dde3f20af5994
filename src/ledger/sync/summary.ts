import { createHash, type Hash } from 'node:crypto'
import type { Admission } from '../admission/index.js'
import type { LedgerStore } from '../store.js'
import type { StoredHead } from '../store-keys.js'
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
  /**
   * Every head, in author order; undefined when there are more than a
   * session may announce (MAX_HEADS): they are then read again bucket by
   * bucket, for the buckets that differ.
   */
  heads: HeadTriple[] | undefined
  forked: string[]
  /** Digest over every bucket's digest; null when there is none (a session limited to some authors). */
  all: string | null
  /** Each bucket's digest, when this side holds at least SUMMARY_BUCKETS_FROM_CHAINS chains. */
  buckets?: string[]
}

/** The bucket of an author: the first byte of its key. */
export function bucketOf (author: string): number {
  return Number.parseInt(author.slice(0, 2), 16)
}

/** The heads' digests, fed one head at a time (in author order), then the equivocating authors. */
class HeadsDigest {
  private readonly hashes: Hash[] = Array.from({ length: SUMMARY_BUCKETS }, () => createHash('sha256'))
  private chains = 0

  head (author: string, seq: number, id: string): void {
    this.hashes[bucketOf(author)]!.update(`${author} ${seq} ${id}\n`)
    this.chains++
  }

  finish (forked: readonly string[]): { all: string, buckets?: string[] } {
    for (const author of forked) this.hashes[bucketOf(author)]!.update(`forked ${author}\n`)
    const digests = this.hashes.map((hash) => hash.digest())
    const all = createHash('sha256')
    for (const digest of digests) all.update(digest)
    const summary: { all: string, buckets?: string[] } = { all: all.digest('hex') }
    if (this.chains >= SUMMARY_BUCKETS_FROM_CHAINS) summary.buckets = digests.map((digest) => digest.toString('hex'))
    return summary
  }
}

/**
 * Digest `heads` (in author order) and `forked` (in order): per bucket,
 * SHA-256 over `<author> <seq> <id>\n` for each head, then `forked
 * <author>\n` for each equivocating author in it; `all` is SHA-256 over the
 * 256 bucket digests' bytes.
 */
export function summarize (heads: HeadTriple[], forked: string[]): HeadsSummary {
  const digest = new HeadsDigest()
  for (const [author, seq, id] of heads) digest.head(author, seq, id)
  return { heads, forked, ...digest.finish(forked) }
}

/**
 * A store's summary for a session with every author: every head digested
 * in one pass over LevelDB, however many (digesting costs no memory), and
 * kept as long as a session could announce them all.
 */
export async function summarizeStore (store: Pick<LedgerStore, 'allHeads' | 'equivocatingAuthors'>, maxHeads = MAX_HEADS): Promise<HeadsSummary> {
  const digest = new HeadsDigest()
  let heads: HeadTriple[] | undefined = []
  for await (const [author, head] of store.allHeads()) {
    digest.head(author, head.seq, head.id)
    if (heads !== undefined && heads.length >= maxHeads) heads = undefined
    heads?.push([author, head.seq, head.id])
  }
  const forked = store.equivocatingAuthors()
  return { heads, forked, ...digest.finish(forked) }
}

/**
 * The heads a side announces: those of `buckets` (null: every bucket) and
 * of the authors in `filter` (null: every author), at most MAX_HEADS,
 * members' chains first when there are more (strangers' keys are free).
 * `complete` is false when some were left out.
 */
export async function collectHeads (
  store: Pick<LedgerStore, 'allHeads' | 'headsStartingWith' | 'stats'>,
  options: { filter?: Set<string> | null, buckets?: Set<number> | null, maxHeads?: number, admission?: Pick<Admission, 'standingOf'>, onOverflow?: () => void }
): Promise<{ heads: HeadTriple[], complete: boolean }> {
  const { filter = null, buckets = null, maxHeads = MAX_HEADS, admission } = options
  const heads: HeadTriple[] = []
  let complete = true
  const source = (): AsyncIterable<[string, StoredHead]> => buckets === null ? store.allHeads() : headsOfBuckets(store, buckets)
  const collect = async (only?: 'member' | 'stranger'): Promise<void> => {
    for await (const [author, head] of source()) {
      if (filter !== null && !filter.has(author)) continue
      if (only !== undefined && admission?.standingOf(author) !== only) continue
      if (heads.length >= maxHeads) {
        complete = false
        options.onOverflow?.()
        return
      }
      heads.push([author, head.seq, head.id])
    }
  }
  if (filter === null && admission !== undefined && store.stats().authors > maxHeads) {
    await collect('member')
    if (complete) await collect('stranger')
  } else {
    await collect()
  }
  return { heads, complete }
}

/** The heads of the chains in `buckets`, bucket by bucket (so in author order), read from LevelDB. */
export async function * headsOfBuckets (store: Pick<LedgerStore, 'headsStartingWith'>, buckets: Set<number>): AsyncGenerator<[string, StoredHead]> {
  for (const bucket of [...buckets].sort((a, b) => a - b)) yield * store.headsStartingWith(bucket.toString(16).padStart(2, '0'))
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
