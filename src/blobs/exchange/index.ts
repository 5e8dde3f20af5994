import type { AbortOptions, Connection, PeerId, Stream, StreamHandlerOptions } from '@libp2p/interface'
import type { BlobStore } from '../store.js'
import { BlobExchange } from './exchange.js'

export { BlobExchange } from './exchange.js'
export * from './constants.js'

/**
 * What the exchange needs of a libp2p node (a libp2p node satisfies it as
 * is): serving, its open connections (to reuse one, direct ones first), and
 * dialing a peer it has none to.
 */
export interface BlobNetwork {
  handle (protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: StreamHandlerOptions): Promise<void>
  unhandle (protocol: string): Promise<void>
  getConnections (peer?: PeerId): Connection[]
  dial (peer: PeerId, options?: AbortOptions): Promise<Connection>
}

/** What the exchange needs of the blob store. */
export type BlobSource = Pick<BlobStore, 'put' | 'openRead' | 'verify' | 'stat' | 'touch' | 'pin' | 'maxBytes'>

export interface BlobExchangeComponents {
  network: BlobNetwork
  store: BlobSource
}

export interface BlobExchangeInit {
  /** Peers asked at once per fetch (default 1: strictly in preference order; at most 4). */
  fanOut?: number
  /** Dial + request + response header, per peer. */
  headerTimeoutMs?: number
  /** Longest silence between frames before a peer counts as stalled. */
  chunkTimeoutMs?: number
  /** One peer's whole transfer. */
  fetchTimeoutMs?: number
  /** Server: time for a request to arrive on a new stream. */
  requestTimeoutMs?: number
  /** Server: one whole upload. */
  serveTimeoutMs?: number
  /** Server: uploads at once; beyond it requests are answered "busy". */
  maxConcurrentServes?: number
}

export interface FetchOptions {
  /** Candidate peers, in preference order. */
  from: PeerId[]
  /** Refuse a blob larger than this (checked against the announced size before any byte is read). */
  maxBytes?: number
  signal?: AbortSignal
  /** Override the exchange's fan-out for this fetch. */
  fanOut?: number
  /** Pin the blob once stored (e.g. the source of a build this node is about to run). */
  pin?: boolean
}

export interface FetchResult {
  hash: string
  size: number
  /** The peer that delivered the bytes; absent when the blob was already here. */
  from?: string
}

export interface BlobExchangeStats {
  /** Uploads completed, and their bytes. */
  served: number
  servedBytes: number
  answeredMissing: number
  answeredBusy: number
  /** Fetches completed from a peer, and their bytes. */
  fetched: number
  fetchedBytes: number
  /** Peers that failed a fetch (missing, busy, lying, stalling, unreachable). */
  failedAttempts: number
  /** Of the fetches completed, those carried by a relayed connection (within the relay's limits). */
  fetchedRelayed: number
  /** Of the uploads completed, those carried by a relayed connection. */
  servedRelayed: number
}

export function blobExchange (components: BlobExchangeComponents, init?: BlobExchangeInit): BlobExchange {
  return new BlobExchange(components, init)
}
