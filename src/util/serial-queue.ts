/** A turn in a SerialQueue: await `turn`, do the work, then call `release` (always, in a finally). */
export interface QueueTicket {
  readonly turn: Promise<void>
  release (): void
}

/**
 * Runs critical sections one at a time, in the order their tickets were
 * taken. Taking the ticket (synchronously) and waiting for the turn are
 * separate, so a caller can reserve its place, do slow independent work
 * (e.g. verify signatures), and still enter in call order.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve()

  reserve (): QueueTicket {
    let release!: () => void
    const done = new Promise<void>((resolve) => { release = resolve })
    const turn = this.tail
    this.tail = turn.then(async () => { await done })
    return { turn, release }
  }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    const ticket = this.reserve()
    await ticket.turn
    try {
      return await fn()
    } finally {
      ticket.release()
    }
  }

  /** Resolves once every ticket taken so far has been released. */
  async idle (): Promise<void> {
    await this.tail
  }
}
