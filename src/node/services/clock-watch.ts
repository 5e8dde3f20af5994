import { clockSkew, type ClockSample, type ClockSkew } from '../../gossip/presence/index.js'
import { MAX_FUTURE_MS } from '../../ledger/constants.js'

/** How often the node compares its clock with its peers'. */
export const CLOCK_CHECK_MS = 15_000
/**
 * Past this the volunteer is told. Well inside MAX_FUTURE_MS (10 min), past
 * which peers refuse the node's entries: time to set the clock right before
 * that happens, and far above the few ms a heartbeat takes to arrive.
 */
export const CLOCK_WARN_MS = 2 * 60_000

export interface ClockWatchComponents {
  /** Live peers with their last heartbeats (presence.members()). */
  members: () => ClockSample[]
  isMember: (author: string) => boolean
  warn: (message: string) => void
}

/**
 * Tells the volunteer when this node's clock is far from its peers'. A clock
 * more than MAX_FUTURE_MS fast gets every entry it writes refused by its
 * peers (and one as slow refuses theirs), silently: without this the node
 * just stops being heard. One warning each time the skew passes
 * CLOCK_WARN_MS, again only after it came back within half of that.
 */
export class ClockWatch {
  private timer?: ReturnType<typeof setInterval>
  private latest?: ClockSkew
  private warned = false

  constructor (private readonly components: ClockWatchComponents, private readonly checkMs = CLOCK_CHECK_MS) {}

  start (): void {
    this.timer = setInterval(() => { this.check() }, this.checkMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** The last estimate (for /api/health), or undefined before there were enough peers. */
  skew (): ClockSkew | undefined {
    return this.latest
  }

  check (): ClockSkew | undefined {
    this.latest = clockSkew(this.components.members(), this.components.isMember)
    const ahead = this.latest?.aheadMs ?? 0
    if (Math.abs(ahead) < CLOCK_WARN_MS / 2) this.warned = false
    if (this.latest !== undefined && Math.abs(ahead) > CLOCK_WARN_MS && !this.warned) {
      this.warned = true
      this.components.warn(warning(this.latest))
    }
    return this.latest
  }
}

function warning (skew: ClockSkew): string {
  const minutes = (Math.abs(skew.aheadMs) / 60_000).toFixed(1)
  const limit = MAX_FUTURE_MS / 60_000
  const whose = `the median of ${skew.peers} ${skew.basis === 'members' ? 'members\'' : 'peers\''} heartbeats`
  const effect = skew.aheadMs > 0
    ? `past ${limit} min its peers refuse everything it writes (claims, results, jobs)`
    : `past ${limit} min it refuses what its peers write`
  return `WARNING: this node's clock runs ${minutes} min ${skew.aheadMs > 0 ? 'ahead of' : 'behind'} its peers' (${whose}); ${effect}. Set the clock right, e.g. with NTP (\`timedatectl set-ntp true\`).`
}
