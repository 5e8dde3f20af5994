/** Response bodies of the node's HTTP API, shared by the server and the client. */

/** Every error answer: `{ error: { name, message } }`; `name` is stable, `message` one sentence. */
export interface ApiErrorBody {
  error: { name: string, message: string }
}

export interface HealthResponse {
  ok: true
  peerId: string
  /** The node's Ed25519 public key in hex: its name as a log author. */
  author: string
  platforms: string[]
  slots: number
  free: number
  version: string
  /** Live members of the mesh other than this node (heard from within the presence timeout). */
  peers: number
  /** Open libp2p connections. */
  connections: number
  startedAt: number
  uptimeMs: number
  /** The local log: entries and chains held, bytes of entry lines, and what its LevelDB directory takes on disk. */
  log?: LogUsage
}

export interface LogUsage {
  entries: number
  authors: number
  /** Bytes of the entry lines held (chains and fork evidence). */
  bytes: number
  /** Bytes the ledger's directory takes on disk (LevelDB files, allocated blocks). */
  diskBytes: number
}

export interface PeerView {
  peerId: string
  author: string
  /** True on this node's own row. */
  self: boolean
  platforms: string[]
  slots: number
  free: number
  /** `"<job id>/<selector>"` of each build it runs. */
  running: string[]
  accepts: { network: boolean, root: boolean }
  version: string
  api?: string
  /** When its last heartbeat arrived (ms since the epoch; now for this node). */
  lastSeen: number
  /** Multiaddrs we know for it. */
  addresses: string[]
  /** How often its results agreed with the quorum (computed from the log). */
  reputation?: { score: number, agreed: number, disagreed: number, results: number }
  /** Caught forking its chain: nothing it writes is believed. */
  equivocating?: boolean
}

export interface PeersResponse {
  peers: PeerView[]
}
