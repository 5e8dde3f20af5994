import type { AbortOptions, Connection, PeerId, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Admission } from '../admission/index.js'
import type { ChainHead, LedgerStore } from '../store.js'
import { LedgerSync } from './ledger-sync.js'

export { LedgerSync } from './ledger-sync.js'
export { runSyncSession, type SessionOptions, type SessionResult } from './session.js'
export * from './constants.js'

/** The part of a libp2p node the sync protocol uses. A Libp2p instance fits. */
export interface SyncNetwork {
  readonly peerId?: PeerId
  handle (protocol: string, handler: StreamHandler, options?: StreamHandlerOptions): Promise<void>
  unhandle (protocol: string): Promise<void>
  dialProtocol (peer: PeerId, protocols: string | string[], options?: AbortOptions): Promise<Stream>
  getConnections (): Connection[]
  addEventListener (type: 'peer:connect', listener: (evt: CustomEvent<PeerId>) => void): void
  removeEventListener (type: 'peer:connect', listener: (evt: CustomEvent<PeerId>) => void): void
}

export interface LedgerSyncComponents {
  network: SyncNetwork
  store: LedgerStore
  /** Quotas the peers' entries are charged to (shared with gossip). Without them every valid entry is taken. */
  admission?: Admission
}

export interface LedgerSyncInit {
  /** Anti-entropy period (±20 % jitter). Default 10 s. */
  intervalMs?: number
  /** Connected peers each anti-entropy round syncs with, chosen at random. Default SYNC_PEERS_PER_ROUND (2). */
  peersPerRound?: number
  /** Longest wait for the next frame. Default 10 s. */
  frameTimeoutMs?: number
  /** Longest session. Default 120 s. */
  sessionTimeoutMs?: number
  /** Longest wait to open the stream. Default 10 s. */
  dialTimeoutMs?: number
  /** Entries one side sends per session (then `more`). Default 25,000. */
  maxEntriesPerSession?: number
  /** Bytes of entry lines one side sends per session (then `more`). Default 32 MiB. */
  maxBytesPerSession?: number
  /** Sessions at once, inbound and outbound. Default 8. */
  maxConcurrentSessions?: number
  /** Heads one side announces per session (members' first past it). Default MAX_HEADS (65,536); what a peer may announce stays MAX_HEADS. */
  maxHeads?: number
}

export interface LedgerSyncStats {
  /** Sessions completed. */
  sessions: number
  /** Sessions that ended in an error (peer unreachable, protocol violation, deadline). */
  failed: number
  /** Entries received and stored. */
  received: number
  sent: number
  forksLearnt: number
  /** Sessions that ended at the digests: both sides held the same heads (SYNC_PROTOCOL_DIGEST). */
  inSync: number
  /** Heads announced to peers. */
  headsSent: number
  lastError?: string
}

export interface LearnOwnChainResult {
  peersAsked: number
  peersAnswered: number
  /** How many of our own entries were adopted from peers (our head moved by this much). */
  adopted: number
  head?: ChainHead
  /** A peer held a conflicting entry of ours: append() now refuses. */
  selfForked: boolean
}

export interface CatchUpResult {
  peersAsked: number
  peersAnswered: number
  /** Entries of any author received and stored. */
  received: number
}

export function ledgerSync (components: LedgerSyncComponents, init?: LedgerSyncInit): LedgerSync {
  return new LedgerSync(components, init)
}
