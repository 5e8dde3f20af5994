/**
 * A log bounded in memory: keeps the first half and the last half of its
 * budget and drops the middle, so both how a build started and how it ended
 * survive a flood. `finish()` joins them with a `[… N bytes truncated …]` line.
 */
export class BoundedLog {
  private readonly headLimit: number
  private readonly tailLimit: number
  private readonly head: Buffer[] = []
  private headBytes = 0
  private tail: Buffer[] = []
  private tailBytes = 0
  private total = 0
  private last = 0x0a

  constructor (maxBytes: number) {
    this.headLimit = Math.floor(maxBytes / 2)
    this.tailLimit = maxBytes - this.headLimit
  }

  /** Bytes appended so far, kept or not. */
  get size (): number { return this.total }

  /** Whether the last byte appended ended a line. */
  get atLineStart (): boolean { return this.last === 0x0a }

  append (chunk: Buffer): void {
    if (chunk.length === 0) return
    this.total += chunk.length
    this.last = chunk[chunk.length - 1]!
    let rest = chunk
    if (this.headBytes < this.headLimit) {
      const take = Math.min(this.headLimit - this.headBytes, rest.length)
      this.head.push(rest.subarray(0, take))
      this.headBytes += take
      rest = rest.subarray(take)
    }
    if (rest.length === 0) return
    // Copy: the caller's buffer may be reused, and a kept slice would pin a large one.
    this.tail.push(Buffer.from(rest))
    this.tailBytes += rest.length
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= this.tailLimit) {
      this.tailBytes -= this.tail.shift()!.length
    }
  }

  finish (): { log: Buffer, truncated: boolean } {
    const tail = Buffer.concat(this.tail)
    const keptTail = tail.subarray(Math.max(0, tail.length - this.tailLimit))
    const dropped = this.total - this.headBytes - keptTail.length
    if (dropped === 0) return { log: Buffer.concat([...this.head, keptTail]), truncated: false }
    const marker = Buffer.from(`\n[… ${dropped} bytes truncated …]\n`)
    return { log: Buffer.concat([...this.head, marker, keptTail]), truncated: true }
  }
}
