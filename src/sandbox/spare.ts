import { componentLogger } from '../util/logger.js'

const log = componentLogger('sandbox:spare')

/** Work roots with spares kept ready; beyond this many, the least recently used one's spares are dropped. */
const MAX_WORK_ROOTS = 16

/**
 * Spares kept per work root. One was not enough: a spare is made once the
 * run that took the last one has launched its first step, and making it
 * (a dozen file system calls, a cgroup, then bwrap setting up the warm
 * sandbox) took ~35–40 ms on a busy node, so a node given jobs back to back
 * or in a burst found its next spare still being made, and waited for it
 * (a median of ~5 ms per run, up to 40). With two, the one taken was made
 * a whole run earlier.
 */
export const SPARES_PER_WORK_ROOT = 2

/** A spare being made, and the shape (see take) it is made for. */
interface Pending<Prepared> {
  shape: string
  made: Promise<Prepared | undefined>
}

/**
 * What a run needs made before it can start (for the bubblewrap executor: its
 * directories, its cgroup and a warm sandbox), prepared before the run asks for them.
 * Making them takes a dozen file system calls through libuv's thread pool
 * (mkdtemp, mkdir, chmod, the traversal checks, three cgroup directories and
 * their limits), ~1–3 ms on a quiet machine and tens of milliseconds when the
 * pool is queued behind fsyncs, all of it between a claim and the build's
 * first instruction. So each work root keeps spares (SPARES_PER_WORK_ROOT):
 * a run takes one and a new one is made while that run builds.
 */
export class SparePool<Prepared> {
  /** Per work root, oldest first. */
  private readonly spares = new Map<string, Array<Pending<Prepared>>>()
  private closed = false

  /**
   * `make` prepares a run under a work root for the shape `shape()` names at
   * that moment (the executor's: the last run's limits, network and root).
   */
  constructor (
    private readonly make: (workRoot: string) => Promise<Prepared>,
    private readonly discard: (prepared: Prepared) => Promise<void>,
    private readonly shape: () => string = () => '',
    private readonly depth = SPARES_PER_WORK_ROOT
  ) {}

  /**
   * A prepared run for `workRoot`: the oldest spare made for the current
   * shape, else the oldest spare (its directories and cgroup serve any run),
   * else one made now. New spares follow, made once `refillAfter` settles (at
   * once by default): making one takes CPU and file system calls that a
   * caller may rather keep off its run's critical path.
   */
  async take (workRoot: string, refillAfter?: Promise<unknown>): Promise<Prepared> {
    const kept = this.spares.get(workRoot) ?? []
    const shape = this.shape()
    const index = Math.max(0, kept.findIndex((s) => s.shape === shape))
    const spare = kept.splice(index, 1)[0]
    if (refillAfter === undefined) this.refill(workRoot)
    else void refillAfter.then(() => { this.refill(workRoot) }, () => { this.refill(workRoot) })
    return (spare === undefined ? undefined : await spare.made) ?? await this.make(workRoot)
  }

  private refill (workRoot: string): void {
    if (this.closed) return
    const kept = this.spares.get(workRoot) ?? []
    // Most recently used last: the work root dropped first past MAX_WORK_ROOTS is the one idle longest.
    this.spares.delete(workRoot)
    this.spares.set(workRoot, kept)
    // (Other runs' refills may have made them already.)
    while (kept.length < this.depth) {
      const shape = this.shape()
      const made = this.make(workRoot).catch((err: unknown) => {
        log('could not prepare a spare run under %s: %e', workRoot, err)
        return undefined
      })
      kept.push({ shape, made })
    }
    if (this.spares.size > MAX_WORK_ROOTS) {
      const [oldest, dropped] = this.spares.entries().next().value!
      this.spares.delete(oldest)
      for (const spare of dropped) void this.discardWhenMade(spare.made)
    }
  }

  private async discardWhenMade (spare: Promise<Prepared | undefined>): Promise<void> {
    const prepared = await spare
    if (prepared !== undefined) await this.discard(prepared).catch((err: unknown) => { log('could not remove a spare run: %e', err) })
  }

  /** The spares of `workRoot` once made (those that could not be made left out), without taking them. */
  async ready (workRoot: string): Promise<Prepared[]> {
    const made: Array<Prepared | undefined> = []
    for (const spare of this.spares.get(workRoot) ?? []) made.push(await spare.made)
    return made.filter((p): p is Prepared => p !== undefined)
  }

  /** Remove the spares of `workRoot`, if any (a work root that will not be used again). */
  async drop (workRoot: string): Promise<void> {
    const kept = this.spares.get(workRoot) ?? []
    this.spares.delete(workRoot)
    await Promise.all(kept.map(async (spare) => { await this.discardWhenMade(spare.made) }))
  }

  /** Remove every spare; the next take of a work root makes its run then, and new spares after it. */
  async clear (): Promise<void> {
    const kept = [...this.spares.values()].flat()
    this.spares.clear()
    await Promise.all(kept.map(async (spare) => { await this.discardWhenMade(spare.made) }))
  }

  /** Remove every spare (the node is stopping); later takes make their runs on demand. */
  async close (): Promise<void> {
    this.closed = true
    await this.clear()
  }
}
