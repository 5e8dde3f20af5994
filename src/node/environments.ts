import { EnvironmentStore, UnknownEnvironmentError, type EnvironmentLease } from '../environments/index.js'
import type { JobEnvironments } from '../jobs/index.js'
import { describeError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { delay } from '../util/wait.js'

const log = componentLogger('node:environments')

/** After a failed making, the next try waits this long, doubling up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 60_000
const MAX_RETRY_MS = 30 * 60_000

export interface NodeEnvironmentsOptions {
  store: EnvironmentStore
  /** The names this node offers (`join --environment`). */
  offered: string[]
  /** Told the names ready whenever they change (the node's heartbeat advertises them). */
  onReady: (names: string[]) => void
  /** A line a volunteer should see: progress while an environment is made, a failure. */
  say: (line: string) => void
}

/**
 * The environments a node offers, as a service: at start, each offered
 * environment is made in the background if this machine does not have it
 * (progress shown), then held for as long as the node runs (so a `gc` never
 * removes it) and advertised. Builds get leases on them, with their
 * packages installed into a derived copy made once per set. The cache is
 * kept within its bound after each making.
 */
export class NodeEnvironments implements JobEnvironments {
  private readonly options: NodeEnvironmentsOptions
  private readonly held = new Map<string, EnvironmentLease>()
  private readonly controller = new AbortController()
  private readonly preparing = new Set<Promise<void>>()
  private stopCollecting: (() => void) | undefined

  constructor (options: NodeEnvironmentsOptions) {
    this.options = options
  }

  get store (): EnvironmentStore {
    return this.options.store
  }

  async start (): Promise<void> {
    // Whenever an environment is made (a job's packages), keep the cache within its bound.
    this.stopCollecting = this.options.store.on('created', () => { void this.collect() })
    for (const name of this.options.offered) {
      const preparing = this.prepare(name)
      this.preparing.add(preparing)
      void preparing.finally(() => { this.preparing.delete(preparing) })
    }
  }

  async stop (): Promise<void> {
    this.stopCollecting?.()
    this.controller.abort(new Error('the node is stopping'))
    await Promise.allSettled([...this.preparing])
    for (const lease of this.held.values()) await lease.release()
    this.held.clear()
  }

  ready (): string[] {
    return this.options.offered.filter((name) => this.held.has(name))
  }

  async acquire (request: { name: string, packages: string[], signal: AbortSignal, onLine?: (line: string) => void }): Promise<EnvironmentLease> {
    if (!this.held.has(request.name)) throw new UnknownEnvironmentError(`this node does not offer the environment ${request.name}${this.options.offered.includes(request.name) ? ' yet (it is being made)' : ''}`)
    const signal = AbortSignal.any([request.signal, this.controller.signal])
    const lease = await this.options.store.acquire({
      name: request.name,
      packages: request.packages,
      signal,
      ...(request.onLine !== undefined ? { onLine: request.onLine } : {})
    })
    return lease
  }

  /** Make (if needed) and hold one offered environment, retrying a failed making later. */
  private async prepare (name: string): Promise<void> {
    const signal = this.controller.signal
    for (let wait = FIRST_RETRY_MS; !signal.aborted; wait = Math.min(wait * 2, MAX_RETRY_MS)) {
      try {
        const existing = await this.options.store.lookup(name)
        if (existing === undefined) this.options.say(`environment ${name}: not on this machine yet, making it (this takes minutes)`)
        const lease = await this.options.store.acquire({ name, create: true, signal, onLine: (line) => { this.options.say(`environment ${name}: ${line}`) } })
        if (signal.aborted) {
          await lease.release()
          return
        }
        this.held.set(name, lease)
        this.options.say(`environment ${name}: ready (${lease.hash})`)
        this.options.onReady(this.ready())
        void this.collect()
        return
      } catch (err) {
        if (signal.aborted) return
        this.options.say(`environment ${name}: could not be made, so this node does not offer it yet: ${describeError(err)} (next try in ${Math.round(wait / 60_000)} min)`)
        await delay(wait, signal).catch(() => {})
      }
    }
  }

  /** Keep the cache within its bound (never removing what is in use). */
  private async collect (): Promise<void> {
    try {
      const { removed } = await this.options.store.gc()
      for (const env of removed) this.options.say(`environment cache: removed ${env.name}${env.requested.length > 0 ? ` + ${env.requested.join(', ')}` : ''} (${env.hash.slice(0, 12)}), least recently used`)
    } catch (err) {
      log.error('could not keep the environment cache within its bound: %s', describeError(err))
    }
  }
}
