/** Response bodies of the node's HTTP API, shared by the server and the client. */

import type { ClockSkew } from '../../gossip/presence/index.js'

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
  /** Environments ready to build in (each also a platform label). */
  environments: string[]
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
  /** How this node is reached and what it relays (absent on a bare API). */
  network?: NetworkStatus
  /** This node's clock against its peers' heartbeats (src/node/services/clock-watch.ts); absent until two peers were heard. */
  clock?: ClockSkew
}

export interface LogUsage {
  entries: number
  authors: number
  /** Bytes of the entry lines held (chains and fork evidence). */
  bytes: number
  /** Bytes the ledger's directory takes on disk (LevelDB files, allocated blocks). */
  diskBytes: number
}

/** How a peer is reached: a direct connection, one that replaced a relayed one (DCUtR), only a relay, or none. */
export type PeerReach = 'direct' | 'hole-punched' | 'relayed' | 'none'

/** The node's place in the network: NAT traversal, private and closed meshes. */
export interface NetworkStatus {
  /** How others can reach this node: `public`, `relayed` (through a relay it holds a reservation on) or `private`. */
  reachability: 'public' | 'relayed' | 'private'
  /** The relays this node holds a reservation on (peer ids). */
  relays: string[]
  /** Serving as a relay for others: the mode, whether it serves now, and the reservations it holds for others. */
  relay: { mode: 'auto' | 'on' | 'off', serving: boolean, reservations: number }
  /** A private mesh: connections need the swarm key. */
  private: boolean
  /** A closed mesh: peers that are not members are refused. */
  closed: boolean
  upnp: boolean
  /** Open connections by kind. */
  connections: { direct: number, relayed: number }
  /** Relayed connections opened, and replaced by a direct connection, since start. */
  relayedOpened: number
  upgraded: number
  /** Blob transfers carried by a relayed connection since start (this node fetching, and serving). */
  relayedBlobs: { fetched: number, served: number }
  /** What the connection gater refused since start. */
  refused: { nonMembers: number, reservations: number, circuits: number, swept: number, weakKeys: number }
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
  /** Environments it has ready to build in (absent when none, and from older nodes' rows). */
  environments?: string[]
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
  /** A member of the node's mesh (its claims and results count under the default trust mode). */
  member?: boolean
  /** How this node reaches it now (other rows only). */
  reach?: PeerReach
  /** How others reach this node (its own row only). */
  reachability?: NetworkStatus['reachability']
}

export interface PeersResponse {
  peers: PeerView[]
}
