/** A time limit checked by the comparison loops, which stop and report what they have when it passes. */
export class Deadline {
  private readonly end: number
  /** Set once some step stopped early because of this deadline. */
  hit = false

  constructor (readonly ms: number) {
    this.end = Date.now() + ms
  }

  get expired (): boolean {
    if (Date.now() < this.end) return false
    this.hit = true
    return true
  }

  remainingMs (): number {
    return Math.max(0, this.end - Date.now())
  }
}
