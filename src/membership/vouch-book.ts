import { MAX_VOUCH_TARGETS } from './constants.js'

/**
 * Every author's latest word (vouch or unvouch) on each key it named, fed one
 * author's entries in increasing seq. Entries at or below the seq already
 * taken for that author are ignored (a copy seen twice, or fork evidence,
 * whose author is barred anyway). An author's first MAX_VOUCH_TARGETS
 * distinct keys are kept; later new keys are ignored.
 */
export class VouchBook {
  private readonly byAuthor = new Map<string, Map<string, boolean>>()
  private readonly lastSeq = new Map<string, number>()
  private records = 0

  /**
   * Take `author`'s vouch (`live` true) or unvouch for `key` at `seq`.
   * Returns whether the author's live set changed.
   */
  add (author: string, seq: number, key: string, live: boolean): boolean {
    const last = this.lastSeq.get(author)
    if (last !== undefined && seq <= last) return false
    this.lastSeq.set(author, seq)
    let keys = this.byAuthor.get(author)
    if (keys === undefined) this.byAuthor.set(author, keys = new Map())
    const before = keys.get(key)
    if (before === undefined) {
      if (keys.size >= MAX_VOUCH_TARGETS) return false
      this.records++
    }
    keys.set(key, live)
    return before !== live && (live || before === true)
  }

  /** Note an entry of `author` at `seq` that is not a vouch (a revoke): later copies of lower seqs are then ignored too. */
  skip (author: string, seq: number): void {
    const last = this.lastSeq.get(author)
    if (last === undefined || seq > last) this.lastSeq.set(author, seq)
  }

  /** Whether `author` at `seq` is news (above what was taken for it). */
  isNew (author: string, seq: number): boolean {
    const last = this.lastSeq.get(author)
    return last === undefined || seq > last
  }

  /** The keys `author` vouches for now. */
  liveOf (author: string): Iterable<string> {
    const keys = this.byAuthor.get(author)
    if (keys === undefined) return []
    return (function * () { for (const [key, live] of keys) if (live) yield key })()
  }

  /** How many (author, key) records are held: the index's memory, one small record each. */
  get size (): number {
    return this.records
  }
}
