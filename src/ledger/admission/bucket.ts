import type { Quota } from './constants.js'

/**
 * A pair of token buckets (entries, bytes) refilled continuously from a
 * clock. Starts full. Cheap: two numbers and a time.
 */
export class QuotaBucket {
  readonly quota: Quota
  private entries: number
  private bytes: number
  private at: number

  constructor (quota: Quota, now: number) {
    this.quota = quota
    this.entries = quota.entries
    this.bytes = quota.bytes
    this.at = now
  }

  private refill (now: number): void {
    const seconds = Math.max(0, now - this.at) / 1000
    this.at = Math.max(this.at, now)
    this.entries = Math.min(this.quota.entries, this.entries + seconds * this.quota.entriesPerSecond)
    this.bytes = Math.min(this.quota.bytes, this.bytes + seconds * this.quota.bytesPerSecond)
  }

  /** Whether one entry of `bytes` fits now. */
  fits (bytes: number, now: number): boolean {
    this.refill(now)
    return this.entries >= 1 && this.bytes >= bytes
  }

  /** Take one entry of `bytes` (call after fits). */
  take (bytes: number, now: number): void {
    this.refill(now)
    this.entries -= 1
    this.bytes -= bytes
  }

  /** Take whatever fits and report whether all of it did: for counting deliveries, which happen whether we like them or not. */
  charge (bytes: number, now: number): boolean {
    const fitted = this.fits(bytes, now)
    this.entries = Math.max(-this.quota.entries, this.entries - 1)
    this.bytes = Math.max(-this.quota.bytes, this.bytes - bytes)
    return fitted
  }

  /** Full again (as if never used): such a bucket can be forgotten. */
  full (now: number): boolean {
    this.refill(now)
    return this.entries >= this.quota.entries && this.bytes >= this.quota.bytes
  }

  /** Seconds until one entry of `bytes` fits (0 when it fits now; Infinity when it never can). */
  waitSeconds (bytes: number, now: number): number {
    this.refill(now)
    if (bytes > this.quota.bytes) return Infinity
    const forEntries = this.entries >= 1 ? 0 : (1 - this.entries) / this.quota.entriesPerSecond
    const forBytes = this.bytes >= bytes ? 0 : (bytes - this.bytes) / this.quota.bytesPerSecond
    return Math.max(forEntries, forBytes)
  }
}
