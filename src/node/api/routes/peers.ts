import type { FastifyInstance } from 'fastify'
import type { LocalPresence, PresenceMember } from '../../../gossip/presence/index.js'
import type { PeerView, PeersResponse } from '../types.js'

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
      version: local.version,
      ...(local.api !== undefined ? { api: local.api } : {}),
      lastSeen: Date.now(),
      addresses: context.ownAddresses()
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
        version: h.version,
        ...(h.api !== undefined ? { api: h.api } : {}),
        lastSeen: member.lastSeen,
        addresses: await context.addressesOf(member.peerId)
      }
    }))
    return { peers: [self, ...others] }
  })
}
