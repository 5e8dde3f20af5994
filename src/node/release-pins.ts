import { platformDecidedAt, type JobView } from '../jobs/index.js'
import { describeError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'

const log = componentLogger('node:release-pins')

/** How long a builder keeps the artifacts of a verified platform it agreed on, pinned (never evicted): 90 days. */
export const DEFAULT_RETENTION_DAYS = 90
export const MAX_RETENTION_DAYS = 10 * 365
/** How often pins past their retention are released. */
const SWEEP_MS = 60 * 60_000

export interface ReleasePinParts {
  self: string
  retentionMs: number
  blobs: { pin (hash: string): Promise<void> | void, unpin (hash: string): Promise<void> | void, has (hash: string): Promise<boolean> }
  jobs: {
    get (id: string): JobView | undefined
    foldedViews (): JobView[]
    on (type: 'job', listener: (event: CustomEvent<{ id: string }>) => void): () => void
  }
}

/**
 * Releases stay fetchable: a builder pins the artifacts of its passing
 * results while the platform is undecided, keeps them pinned for the
 * retention once the platform is verified and it was among the agreeing
 * builders, and lets them go (back to the LRU cache) otherwise or after the
 * retention. A function of the log and the clock, re-applied at start and
 * hourly, so pins survive restarts and need no state of their own.
 */
export class ReleasePins {
  private readonly parts: ReleasePinParts
  private readonly pinned = new Set<string>()
  /** hash → the `<job>/<platform>` slots that keep it. */
  private readonly wanted = new Map<string, Set<string>>()
  private off: (() => void) | undefined
  private timer: ReturnType<typeof setInterval> | undefined

  constructor (parts: ReleasePinParts) {
    this.parts = parts
  }

  async start (): Promise<void> {
    await this.sweep()
    this.off = this.parts.jobs.on('job', (event) => {
      const view = this.parts.jobs.get(event.detail.id)
      if (view !== undefined) void this.apply(view, Date.now()).catch((err: unknown) => { log.error('pinning %s: %s', view.id, describeError(err)) })
    })
    this.timer = setInterval(() => { void this.sweep() }, SWEEP_MS)
    this.timer.unref?.()
  }

  stop (): void {
    this.off?.()
    clearInterval(this.timer)
  }

  /** Hashes this node pins as releases now. */
  held (): string[] {
    return [...this.pinned]
  }

  private async sweep (): Promise<void> {
    const now = Date.now()
    for (const view of this.parts.jobs.foldedViews()) {
      try {
        await this.apply(view, now)
      } catch (err) {
        log.error('pinning %s: %s', view.id, describeError(err))
      }
    }
  }

  /** What to hold for one job, by platform: own pass results' artifacts, while they may still become (or stay) a release. */
  async apply (view: JobView, now: number): Promise<void> {
    for (const platform of view.platforms) {
      const mine = platform.results.filter((r) => r.builder === this.parts.self && r.latest && r.status === 'pass')
      if (mine.length === 0) continue
      let keep: boolean
      if (view.cancelled) keep = false
      else if (platform.verdict === 'pending' || platform.verdict === 'unmatched') keep = true
      else if (platform.verdict === 'verified') {
        const since = platformDecidedAt(platform) ?? now
        keep = mine.some((r) => r.agrees === true) && now < since + this.parts.retentionMs
      } else keep = false
      const slot = `${view.id}/${platform.selector}`
      for (const artifact of mine.flatMap((r) => r.artifacts)) {
        // Several jobs may hold one hash (a rerun builds the same bytes): it is pinned while any of them wants it.
        let holders = this.wanted.get(artifact.sha256)
        if (keep) {
          if (holders === undefined) this.wanted.set(artifact.sha256, holders = new Set())
          holders.add(slot)
          if (!this.pinned.has(artifact.sha256) && await this.parts.blobs.has(artifact.sha256)) {
            await this.parts.blobs.pin(artifact.sha256)
            this.pinned.add(artifact.sha256)
          }
          continue
        }
        holders?.delete(slot)
        if (holders !== undefined && holders.size > 0) continue
        this.wanted.delete(artifact.sha256)
        // Unpinned also when this process never pinned it: the marker outlives restarts, the retention does not.
        if (this.pinned.delete(artifact.sha256) || (await this.parts.blobs.has(artifact.sha256))) await this.parts.blobs.unpin(artifact.sha256)
      }
    }
  }
}
