import type { EnvironmentLease } from '../../environments/index.js'
import type { DecodedEntry, EntryBody } from '../../ledger/entry.js'
import type { Member } from '../scheduler.js'

/**
 * What the job service needs from the rest of the node, each as narrow as it
 * can be. The node wires the real ledger, blob store, blob exchange, presence
 * and sandbox to these; nothing here knows libp2p.
 */

/** The log: our own appends, lookups, and a stream of newly stored entries. */
export interface JobLedger extends EventTarget {
  append (type: string, body: EntryBody): Promise<DecodedEntry>
  get (id: string): Promise<DecodedEntry | undefined>
  /** Entries of a type in clock order; `reverse`: newest first. */
  byType (type: string, options?: { reverse?: boolean }): AsyncIterable<DecodedEntry>
  byRef (id: string): AsyncIterable<DecodedEntry>
  /** Authors whose chains forked: their entries no longer count. */
  isEquivocating (author: string): boolean
}

/** The local blob store. */
export interface JobBlobs {
  has (hash: string): Promise<boolean>
  put (data: Uint8Array, options?: { pin?: boolean, durable?: boolean }): Promise<{ hash: string, size: number }>
  putFile (path: string, options?: { move?: boolean, pin?: boolean }): Promise<{ hash: string, size: number }>
  readBytes (hash: string, maxBytes: number): Promise<Buffer>
  path (hash: string): string
  /** `persist: false`: kept in memory only (the jobs layer pins its sources again from the log after a restart). */
  pin (hash: string, options?: { persist?: boolean }): Promise<void> | void
  unpin (hash: string): Promise<void> | void
}

/** Fetches a blob from peers into the local store (verified as it arrives). */
export interface BlobFetcher {
  fetch (hash: string, options: { fromAuthors: string[], maxBytes?: number, signal?: AbortSignal }): Promise<void>
}

/** Live membership from presence heartbeats, and our own advertised load. */
export interface Membership {
  members (): Member[]
  /**
   * What our heartbeats say of our load. `now: true` publishes a heartbeat at
   * once; otherwise the next heartbeat of the interval carries it (claims and
   * results already tell the others, see JobService.advertise).
   */
  update (state: { free: number, running: string[] }, options?: { now?: boolean }): void
  /** The longest until our next heartbeat (the interval it announces); absent: 0. */
  announcesWithinMs? (): number
}

/** The environments this node builds in (the node wires its environment store to this). */
export interface JobEnvironments {
  /** Names ready here now: what the scheduler may claim for, and heartbeats advertise. */
  ready (): string[]
  /**
   * Hold the named environment (with `packages` installed into a derived
   * copy, made once per set) for one build. Throws, saying why, when it
   * cannot: not offered here, unknown packages, an unreachable archive.
   */
  acquire (request: { name: string, packages: string[], signal: AbortSignal, onLine?: (line: string) => void }): Promise<EnvironmentLease>
}
