/** One LevelDB write: the store only ever puts. */
export interface PutOp { type: 'put', key: string, value: string }

/** The part of LevelDB the writer needs. */
export interface BatchWriter {
  batch: (ops: PutOp[], options: { sync: boolean }) => Promise<void>
  /**
   * Called before writing again after a failed write. LevelDB does not:
   * a write that failed half-way (ENOSPC) leaves a torn record in its log,
   * and records appended after it are lost when the log is replayed at the
   * next open. Closing and opening the database again replays the log up to
   * the tear and starts a new one.
   */
  recover?: () => Promise<void>
}

/** More operations than this are not joined into one batch (a backlog after a slow disk is written in parts). */
export const MAX_OPS_PER_BATCH = 20_000

/**
 * Operations, and characters of values, written behind that may wait for
 * the disk (about 800 entries, or fewer large ones); past either,
 * `roomBehind()` waits, so a slow or stalled disk slows peers' entries down
 * instead of piling them up in memory.
 */
export const MAX_OPS_BEHIND = 4_096
export const MAX_CHARS_BEHIND = 8 * 1024 * 1024

interface Queued {
  ops: PutOp[]
  /** Whose write this is: `behind` writes are retried after a failure; the others fail with it. */
  behind: boolean
  sync: boolean
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * The ledger's writes, one LevelDB batch at a time, in the order they were
 * made. Writes that wait (`write`) resolve once on disk, as before. Writes
 * "behind" (`writeBehind`: entries from peers, which their authors and relays
 * hold) return at once: the store makes them visible in memory while
 * LevelDB's thread pool writes them, and everything queued meanwhile is
 * joined into the next batch (a group commit). Order is kept, so a waiting
 * write (an own entry, fsync'd) is on disk only with everything written
 * before it.
 *
 * A failed batch (a full disk) keeps its `behind` operations, ahead of any
 * later ones, for the next attempt; `failure` says so until one succeeds.
 * Waiting writes in the failed batch, or queued after it, are rejected with
 * the error and dropped.
 */
export class WriteBehind {
  private readonly db: BatchWriter
  private queue: Queued[] = []
  /** Operations queued or being written, and the characters of their values. */
  private opsWaiting = 0
  private charsWaiting = 0
  private draining = false
  /** A kick is scheduled for the end of this turn (kickAfterThisTurn). */
  private kickScheduled = false
  /** The attempt under way, if any. */
  private current: Promise<void> = Promise.resolve()
  private lastError: unknown
  private lastFailedAt = 0
  private readonly now: () => number

  constructor (db: BatchWriter, options: { now?: () => number } = {}) {
    this.db = db
    this.now = options.now ?? Date.now
  }

  /** The error of the last attempt, while `behind` writes it failed are still waiting for another. */
  get failure (): unknown {
    return this.lastError
  }

  /** Operations not yet on disk: queued, being written, or kept from a failed attempt. */
  get backlog (): number {
    return this.opsWaiting
  }

  /** Resolves at once while fewer than MAX_OPS_BEHIND operations (MAX_CHARS_BEHIND characters) wait; else once those were attempted. */
  async roomBehind (): Promise<void> {
    if (this.opsWaiting >= MAX_OPS_BEHIND || this.charsWaiting >= MAX_CHARS_BEHIND) await this.settled()
  }

  /** Write `ops` after everything queued before them; resolves once they are written (and fsync'd with `sync`). */
  async write (ops: PutOp[], options: { sync: boolean }): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, behind: false, sync: options.sync, resolve, reject })
      this.account(ops, 1)
      this.kick()
    })
  }

  /** Queue `ops` without waiting: they are written with the next batch, and kept for another attempt if it fails. */
  writeBehind (ops: PutOp[]): void {
    this.queue.push({ ops, behind: true, sync: false, resolve: () => {}, reject: () => {} })
    this.account(ops, 1)
    this.kickAfterThisTurn()
  }

  /**
   * Resolves once every write queued so far was attempted (whatever became
   * of it): reads after it see them. After a failure it only waits for an
   * attempt under way: reads do not retry a full disk (each would reopen
   * LevelDB), and what is kept for the next attempt is not on disk yet.
   */
  async settled (): Promise<void> {
    if (this.lastError !== undefined) {
      await this.current
      return
    }
    if (!this.draining && this.queue.length === 0) return
    await this.write([], { sync: false }).catch(() => {})
  }

  /** Write everything queued now; rejects with the error if the writes kept from a failure still cannot be written. */
  async flush (): Promise<void> {
    await this.write([], { sync: false })
  }

  /** Milliseconds since the last failed attempt (Infinity if none). */
  sinceFailure (): number {
    return this.lastError === undefined ? Infinity : this.now() - this.lastFailedAt
  }

  private account (ops: PutOp[], sign: 1 | -1): void {
    let chars = 0
    for (const op of ops) chars += op.value.length
    this.opsWaiting += sign * ops.length
    this.charsWaiting += sign * chars
  }

  /**
   * Start writing once this turn of the event loop is over. Handing a batch
   * to LevelDB's thread wakes that thread, and on a busy machine the waking
   * thread often takes the core from this one for milliseconds: an entry
   * that came in would reach its readers (a verdict on its way to a
   * browser, a claim) only after that. Deferred, what this turn does with
   * the entry goes first, and every entry that comes in the same turn joins
   * one batch. A 0 ms timer, not setImmediate: it fires after this turn's
   * immediates too, so the plan an entry sets off (jobs/service) runs first,
   * and the claim it makes is written in one fsync'd batch with the entry
   * instead of waiting for the entry's own batch. A waiting write (`write`)
   * still starts at once, and takes these with it, in order.
   */
  private kickAfterThisTurn (): void {
    if (this.draining || this.kickScheduled) return
    this.kickScheduled = true
    setTimeout(() => {
      this.kickScheduled = false
      this.kick()
    }, 0)
  }

  private kick (): void {
    if (this.draining) return
    this.draining = true
    this.current = this.drain()
  }

  /** Never throws; clears `draining` in the same turn as it finds the queue empty, so no write is left behind. */
  private async drain (): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const taken: Queued[] = []
        let count = 0
        while (this.queue.length > 0 && (taken.length === 0 || count + this.queue[0]!.ops.length <= MAX_OPS_PER_BATCH)) {
          const next = this.queue.shift()!
          taken.push(next)
          count += next.ops.length
        }
        const ops = taken.length === 1 ? taken[0]!.ops : taken.flatMap((q) => q.ops)
        try {
          if (this.lastError !== undefined) await this.db.recover?.()
          if (ops.length > 0) await this.db.batch(ops, { sync: taken.some((q) => q.sync) })
          this.lastError = undefined
          for (const q of taken) this.account(q.ops, -1)
          for (const q of taken) q.resolve()
        } catch (err) {
          this.lastError = err
          this.lastFailedAt = this.now()
          // Order is kept: a waiting write queued after the failed one cannot be written before it,
          // so it fails with it. Behind writes are kept, first, for the next attempt; they are not
          // retried until someone writes again (a full disk is not polled).
          const all = [...taken, ...this.queue]
          this.queue = all.filter((q) => q.behind)
          for (const q of all) {
            if (q.behind) continue
            this.account(q.ops, -1)
            q.reject(err)
          }
          return
        }
      }
    } finally {
      this.draining = false
    }
  }
}
