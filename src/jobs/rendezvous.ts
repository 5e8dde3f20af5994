import { createHash } from 'node:crypto'
import { MAX_RANKED_ENTRIES } from './constants.js'
import { slotKey } from './selector.js'

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

/** A candidate's weight as a number: the score's first 48 bits (exact in a double). */
function scorePrefix (jobId: string, selector: string, key: string): number {
  return createHash('sha256').update(`${jobId}\n${selector}\n${key}`, 'utf8').digest().readUIntBE(0, 6)
}

/** Whether `a` ranks before `b` (as rank() orders them), given their score prefixes. */
function ranksBefore (jobId: string, selector: string, a: string, prefixA: number, b: string, prefixB: number): boolean {
  if (prefixA !== prefixB) return prefixA > prefixB
  // Equal first 48 bits (about one pair in 2^48): the whole scores decide, then the keys.
  const [scoreA, scoreB] = [rendezvousScore(jobId, selector, a), rendezvousScore(jobId, selector, b)]
  return scoreA !== scoreB ? scoreA > scoreB : a < b
}

/** One slot's candidates seen so far, in rank order, with their score prefixes. */
interface SlotOrder { jobId: string, selector: string, keys: string[], prefixes: Map<string, number> }

/**
 * The ranking cache of the claim planner (docs/SCALING.md, item 4): per slot,
 * every candidate it has seen, kept in rendezvous order, so a plan hashes a
 * candidate once per slot (when the slot is first ranked, or when a member
 * joins) instead of on every plan; a plan then walks the kept order and
 * takes the candidates it has now (members that left or became ineligible
 * are skipped). Same order as rank(). Bounded: at most `maxEntries` (slot,
 * candidate) pairs; past that the slots ranked longest ago are forgotten.
 */
export class RankCache {
  private readonly slots = new Map<string, SlotOrder>()
  private readonly maxEntries: number
  private entries = 0

  constructor (maxEntries = MAX_RANKED_ENTRIES) {
    this.maxEntries = maxEntries
  }

  /** rank(jobId, selector, candidates), from the kept order. */
  rank (jobId: string, selector: string, candidates: Iterable<string>): string[] {
    const wanted = new Set(candidates)
    const key = slotKey(jobId, selector)
    let order = this.slots.get(key)
    if (order === undefined) {
      order = { jobId, selector, keys: [], prefixes: new Map() }
      this.slots.set(key, order)
    }
    for (const candidate of wanted) if (!order.prefixes.has(candidate)) this.insert(order, candidate)
    const ranked: string[] = []
    for (const candidate of order.keys) if (wanted.has(candidate)) ranked.push(candidate)
    this.trim(key)
    return ranked
  }

  /** Forget every slot not in `keys` (`<job id>/<selector>`): those no longer open. */
  retain (keys: ReadonlySet<string>): void {
    for (const [key, order] of this.slots) {
      if (keys.has(key)) continue
      this.slots.delete(key)
      this.entries -= order.keys.length
    }
  }

  /** Slots and (slot, candidate) pairs held. */
  get size (): { slots: number, entries: number } {
    return { slots: this.slots.size, entries: this.entries }
  }

  private insert (order: SlotOrder, candidate: string): void {
    const prefix = scorePrefix(order.jobId, order.selector, candidate)
    let low = 0
    let high = order.keys.length
    while (low < high) {
      const mid = (low + high) >>> 1
      const other = order.keys[mid]!
      if (ranksBefore(order.jobId, order.selector, other, order.prefixes.get(other)!, candidate, prefix)) low = mid + 1
      else high = mid
    }
    order.keys.splice(low, 0, candidate)
    order.prefixes.set(candidate, prefix)
    this.entries++
  }

  /** Over the bound: forget the slots ranked longest ago, never the one just ranked. */
  private trim (keep: string): void {
    for (const [key, order] of this.slots) {
      if (this.entries <= this.maxEntries) return
      if (key === keep) continue
      this.slots.delete(key)
      this.entries -= order.keys.length
    }
  }
}
