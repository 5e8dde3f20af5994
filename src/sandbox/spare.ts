import { componentLogger } from '../util/logger.js'

const log = componentLogger('sandbox:spare')

/** Work roots with a spare kept ready; beyond this many, the least recently used one's spare is dropped. */
const MAX_WORK_ROOTS = 16

/**
 * What a run needs made before it can start (for the bubblewrap executor: its
 * directories, its cgroup and a warm sandbox), prepared before the run asks for them.
 * Making them takes a dozen file system calls through libuv's thread pool
 * (mkdtemp, mkdir, chmod, the traversal checks, three cgroup directories and
 * their limits), ~1–3 ms on a quiet machine and tens of milliseconds when the
 * pool is queued behind fsyncs, all of it between a claim and the build's
 * first instruction. So each work root keeps one spare: a run takes it and a
 * new one is made at once, while that run builds.
 */
export class SparePool<Prepared> {
  private readonly spares = new Map<string, Promise<Prepared | undefined>>()
  private closed = false

  constructor (private readonly make: (workRoot: string) => Promise<Prepared>, private readonly discard: (prepared: Prepared) => Promise<void>) {}

  /**
   * A prepared run for `workRoot`: the spare if one is ready or being made,
   * else made now. A new spare follows, made once `refillAfter` settles (at
   * once by default): making one takes CPU and file system calls that a
   * caller may rather keep off its run's critical path.
   */
  async take (workRoot: string, refillAfter?: Promise<unknown>): Promise<Prepared> {
    const spare = this.spares.get(workRoot)
    this.spares.delete(workRoot)
    if (refillAfter === undefined) this.refill(workRoot)
    else void refillAfter.then(() => { this.refill(workRoot) }, () => { this.refill(workRoot) })
    return (spare === undefined ? undefined : await spare) ?? await this.make(workRoot)
  }

  private refill (workRoot: string): void {
    // (Another run's refill came first.)
    if (this.closed || this.spares.has(workRoot)) return
    const making = this.make(workRoot).catch((err: unknown) => {
      log('could not prepare a spare run under %s: %e', workRoot, err)
      return undefined
    })
    this.spares.set(workRoot, making)
    if (this.spares.size > MAX_WORK_ROOTS) {
      const [oldest, dropped] = this.spares.entries().next().value!
      this.spares.delete(oldest)
      void this.discardWhenMade(dropped)
    }
  }

  private async discardWhenMade (spare: Promise<Prepared | undefined>): Promise<void> {
    const prepared = await spare
    if (prepared !== undefined) await this.discard(prepared).catch((err: unknown) => { log('could not remove a spare run: %e', err) })
  }

  /** The spare of `workRoot` once made (undefined if there is none, or it could not be made), without taking it. */
  async ready (workRoot: string): Promise<Prepared | undefined> {
    return await this.spares.get(workRoot)
  }

  /** Remove the spare of `workRoot`, if any (a work root that will not be used again). */
  async drop (workRoot: string): Promise<void> {
    const spare = this.spares.get(workRoot)
    this.spares.delete(workRoot)
    if (spare !== undefined) await this.discardWhenMade(spare)
  }

  /** Remove every spare; the next take of a work root makes its run then, and a new spare after it. */
  async clear (): Promise<void> {
    const spares = [...this.spares.values()]
    this.spares.clear()
    await Promise.all(spares.map(async (spare) => { await this.discardWhenMade(spare) }))
  }

  /** Remove every spare (the node is stopping); later takes make their runs on demand. */
  async close (): Promise<void> {
    this.closed = true
    await this.clear()
  }
}
