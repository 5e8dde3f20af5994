import type { FastifyInstance } from 'fastify'
import type { LocalPresence, PresenceMember } from '../../../gossip/presence/index.js'
import type { BuilderReputation } from '../../../jobs/index.js'
import type { NetworkStatus, PeerReach, PeerView, PeersResponse } from '../types.js'

/** What GET /api/peers reads. */
export interface PeersContext {
  peerId: string
  author: string
  local (): Readonly<LocalPresence>
  /** This node's own listen addresses. */
  ownAddresses (): string[]
  members (): PresenceMember[]
  /** Addresses known for another peer (open connections first, then the address book). */
  addressesOf (peerId: string): Promise<string[]>
  /** Agreement with the quorum, computed from the log (absent on a bare API). */
  reputation?: () => BuilderReputation[]
  /** The author forked its chain: its entries are no longer believed. */
  isEquivocating?: (author: string) => boolean
  /** The author is a member of the node's mesh (absent on a bare API). */
  isMember?: (author: string) => boolean
  /** How this node reaches a peer now. */
  reachOf?: (peerId: string) => PeerReach
  /** How others reach this node. */
  reachability?: () => NetworkStatus['reachability']
}

export function registerPeerRoutes (app: FastifyInstance, context: PeersContext): void {
  app.get('/api/peers', async (): Promise<PeersResponse> => {
    const local = context.local()
    const self: PeerView = {
      peerId: context.peerId,
      author: context.author,
      self: true,
      platforms: local.platforms,
      slots: local.slots,
      free: local.free,
      running: local.running,
      accepts: local.accepts,
      ...(local.environments !== undefined && local.environments.length > 0 ? { environments: local.environments } : {}),
      version: local.version,
      ...(local.api !== undefined ? { api: local.api } : {}),
      lastSeen: Date.now(),
      addresses: context.ownAddresses(),
      ...(context.reachability !== undefined ? { reachability: context.reachability() } : {})
    }
    const others = await Promise.all(context.members().map(async (member): Promise<PeerView> => {
      const h = member.heartbeat
      return {
        peerId: member.peerId,
        author: member.author,
        self: false,
        platforms: h.platforms,
        slots: h.slots,
        free: h.free,
        running: h.running,
        accepts: h.accepts,
        ...(h.environments !== undefined && h.environments.length > 0 ? { environments: h.environments } : {}),
        version: h.version,
        ...(h.api !== undefined ? { api: h.api } : {}),
        lastSeen: member.lastSeen,
        addresses: await context.addressesOf(member.peerId),
        ...(context.reachOf !== undefined ? { reach: context.reachOf(member.peerId) } : {})
      }
    }))
    const scores = new Map((context.reputation?.() ?? []).map((r) => [r.builder, r]))
    const rows = [self, ...others].map((row) => {
      const r = scores.get(row.author)
      return {
        ...row,
        ...(r !== undefined ? { reputation: { score: r.score, agreed: r.agreed, disagreed: r.disagreed, results: r.results } } : {}),
        ...(context.isEquivocating !== undefined ? { equivocating: context.isEquivocating(row.author) } : {}),
        ...(context.isMember !== undefined ? { member: context.isMember(row.author) } : {})
      }
    })
    return { peers: rows }
  })
}
