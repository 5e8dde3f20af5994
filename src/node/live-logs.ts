import type { PeerId } from '@libp2p/interface'
import { isTrusted, type JobView, type TrustPolicy } from '../jobs/index.js'
import { liveKey, MAX_FOLLOWS, MAX_FOLLOWS_PER_JOB, parseLiveKey, type LiveChunk, type LiveLogHub, type LiveLogService, type LiveSnapshot } from '../livelog/index.js'
import { describeError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { delay } from '../util/wait.js'

const log = componentLogger('node:live-logs')

/** How often a follow that failed (builder not started yet, connection lost) is tried again for a run still going. */
const RETRY_MS = [500, 1_000, 2_000, 4_000, 8_000]

/** A chunk or end of a slot of the job, or `job`: the job's view changed (a claim, a result). */
export type LiveEvent = { type: 'chunk', chunk: LiveChunk } | { type: 'end', key: string, note?: string } | { type: 'job' }

export interface LiveRelayParts {
  hub: LiveLogHub
  service: LiveLogService
  self: string
  jobs: {
    get (id: string): JobView | undefined
    trustPolicy (): TrustPolicy
    on (type: 'job', listener: (event: CustomEvent<{ id: string }>) => void): () => void
  }
  peerIdOf (author: string): PeerId
}

/** Builders of a platform that claimed it and have not reported yet: running (or about to). */
export function runningBuilders (view: JobView): Array<{ platform: string, builder: string }> {
  const found: Array<{ platform: string, builder: string }> = []
  for (const p of view.platforms) {
    const reported = new Set(p.results.map((r) => r.builder))
    for (const c of p.claims) {
      if (!reported.has(c.builder) && !found.some((f) => f.platform === p.selector && f.builder === c.builder)) found.push({ platform: p.selector, builder: c.builder })
    }
  }
  return found
}

/**
 * What the API's live log route reads: the hub's slots for a job, and a
 * subscription that, while anyone watches a job, follows its running remote
 * builders into the hub (this node's own runs are there already). Follows
 * are shared by every client watching the job, and bounded per job and in all.
 */
export class LiveLogRelay {
  private readonly parts: LiveRelayParts
  private readonly watchers = new Map<string, Set<(event: LiveEvent) => void>>()
  private readonly follows = new Map<string, AbortController>()
  private readonly offJob: () => void

  constructor (parts: LiveRelayParts) {
    this.parts = parts
    this.offJob = parts.jobs.on('job', (event) => {
      const listeners = this.watchers.get(event.detail.id)
      if (listeners === undefined) return
      this.refresh(event.detail.id)
      for (const listener of listeners) listener({ type: 'job' })
    })
  }

  /** Every slot of the job the hub holds now. */
  snapshots (job: string): LiveSnapshot[] {
    return this.parts.hub.keys(`${job}/`).map((key) => this.parts.hub.snapshot(key)!).filter((s) => s !== undefined)
  }

  /** Receive the job's live chunks and ends; follows its remote builders while at least one subscriber remains. */
  subscribe (job: string, listener: (event: LiveEvent) => void): () => void {
    const prefix = `${job}/`
    const offChunk = this.parts.hub.on('chunk', (event) => { if (event.detail.key.startsWith(prefix)) listener({ type: 'chunk', chunk: event.detail }) })
    const offEnd = this.parts.hub.on('end', (event) => { if (event.detail.key.startsWith(prefix)) listener({ type: 'end', ...event.detail }) })
    let listeners = this.watchers.get(job)
    if (listeners === undefined) this.watchers.set(job, listeners = new Set())
    listeners.add(listener)
    this.refresh(job)
    let done = false
    return () => {
      if (done) return
      done = true
      offChunk()
      offEnd()
      listeners.delete(listener)
      if (listeners.size > 0) return
      this.watchers.delete(job)
      for (const [key, controller] of this.follows) if (key.startsWith(prefix)) controller.abort()
    }
  }

  stop (): void {
    this.offJob()
    for (const controller of this.follows.values()) controller.abort()
    this.follows.clear()
  }

  /** Start following the job's running remote builders not followed yet, within the bounds. */
  private refresh (job: string): void {
    const view = this.parts.jobs.get(job)
    if (view === undefined) return
    const policy = this.parts.jobs.trustPolicy()
    // Trusted builders first: a stranger who claims a slot may be followed, but never before them.
    const running = runningBuilders(view).filter((r) => r.builder !== this.parts.self)
      .sort((a, b) => Number(isTrusted(policy, b.builder)) - Number(isTrusted(policy, a.builder)))
    let forJob = [...this.follows.keys()].filter((key) => key.startsWith(`${job}/`)).length
    for (const { platform, builder } of running) {
      const key = liveKey(job, platform, builder)
      if (this.follows.has(key)) continue
      if (forJob >= MAX_FOLLOWS_PER_JOB || this.follows.size >= MAX_FOLLOWS) break
      forJob++
      const controller = new AbortController()
      this.follows.set(key, controller)
      void this.followLoop(key, controller.signal).finally(() => {
        if (this.follows.get(key)?.signal === controller.signal) this.follows.delete(key)
      })
    }
  }

  private async followLoop (key: string, signal: AbortSignal): Promise<void> {
    const { job, platform, builder } = parseLiveKey(key)
    for (let attempt = 0; !signal.aborted; attempt++) {
      const held = this.parts.hub.snapshot(key)
      if (held?.ended === true) return
      try {
        const outcome = await this.parts.service.follow(this.parts.peerIdOf(builder), builder, job, platform, {
          offset: held === undefined ? 0 : held.offset + held.text.length,
          signal
        })
        if (outcome.outcome === 'ended' || outcome.outcome === 'cut') return
        log('following %s: %s', key, 'reason' in outcome ? outcome.reason : outcome.outcome)
      } catch (err) {
        if (signal.aborted) return
        log('following %s failed: %s', key, describeError(err))
      }
      // Still running by the log? Then try again after a pause (it may not have started yet, or the link broke).
      const view = this.parts.jobs.get(job)
      if (view === undefined || !runningBuilders(view).some((r) => r.platform === platform && r.builder === builder)) return
      if (attempt >= RETRY_MS.length * 3) {
        this.parts.hub.end(key, 'the builder could not be reached for its live log')
        return
      }
      await delay(RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]!, signal).catch(() => {})
    }
  }
}
