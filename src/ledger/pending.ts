import type { DecodedEntry } from './entry.js'

export interface PendingLimits {
  maxEntries: number
  maxBytes: number
}

/**
 * Verified entries that arrived before their predecessors (gossip is not
 * ordered), held in memory until the chain reaches them. Bounded in count and
 * bytes: the oldest are dropped first, and `onEvict` is told (sync will fetch
 * them again in order). Nothing here is ever stored unchecked.
 */
export class PendingBuffer {
  private readonly limits: PendingLimits
  private readonly onEvict: (entry: DecodedEntry, why: string) => void
  /** author → seq → candidates (more than one only when the author forks). */
  private readonly byAuthor = new Map<string, Map<number, DecodedEntry[]>>()
  /** id → entry, in arrival order: the eviction order. */
  private readonly order = new Map<string, DecodedEntry>()
  private totalBytes = 0

  constructor (limits: PendingLimits, onEvict: (entry: DecodedEntry, why: string) => void = () => {}) {
    this.limits = limits
    this.onEvict = onEvict
  }

  get size (): number {
    return this.order.size
  }

  get bytes (): number {
    return this.totalBytes
  }

  has (id: string): boolean {
    return this.order.has(id)
  }

  /** Hold `entry`; returns false if it is already held or larger than the whole buffer. */
  park (entry: DecodedEntry): boolean {
    if (this.order.has(entry.id)) return false
    const size = entry.line.length
    if (size > this.limits.maxBytes || this.limits.maxEntries <= 0) {
      this.onEvict(entry, 'larger than the pending buffer')
      return false
    }
    while (this.order.size >= this.limits.maxEntries || this.totalBytes + size > this.limits.maxBytes) {
      const oldest = this.order.values().next().value!
      this.remove(oldest)
      this.onEvict(oldest, `pending buffer full (${this.order.size + 1} entries, ${this.totalBytes + oldest.line.length} bytes)`)
    }
    let seqs = this.byAuthor.get(entry.entry.author)
    if (seqs === undefined) {
      seqs = new Map()
      this.byAuthor.set(entry.entry.author, seqs)
    }
    const candidates = seqs.get(entry.entry.seq)
    if (candidates === undefined) seqs.set(entry.entry.seq, [entry])
    else candidates.push(entry)
    this.order.set(entry.id, entry)
    this.totalBytes += size
    return true
  }

  /** Remove and return the entries held for (author, seq). */
  take (author: string, seq: number): DecodedEntry[] {
    const candidates = this.byAuthor.get(author)?.get(seq)
    if (candidates === undefined) return []
    const taken = [...candidates]
    for (const entry of taken) this.remove(entry)
    return taken
  }

  /** Forget everything held for an author (e.g. it turned out to equivocate). */
  dropAuthor (author: string): number {
    const seqs = this.byAuthor.get(author)
    if (seqs === undefined) return 0
    let dropped = 0
    for (const candidates of [...seqs.values()]) {
      for (const entry of [...candidates]) {
        this.remove(entry)
        dropped++
      }
    }
    return dropped
  }

  clear (): void {
    this.byAuthor.clear()
    this.order.clear()
    this.totalBytes = 0
  }

  private remove (entry: DecodedEntry): void {
    if (!this.order.delete(entry.id)) return
    this.totalBytes -= entry.line.length
    const seqs = this.byAuthor.get(entry.entry.author)
    const candidates = seqs?.get(entry.entry.seq)
    if (seqs === undefined || candidates === undefined) return
    const at = candidates.indexOf(entry)
    if (at >= 0) candidates.splice(at, 1)
    if (candidates.length === 0) seqs.delete(entry.entry.seq)
    if (seqs.size === 0) this.byAuthor.delete(entry.entry.author)
  }
}
