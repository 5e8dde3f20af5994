import type { PeerId } from '@libp2p/interface'
import type { BlobExchange } from '../blobs/exchange/index.js'
import { peerIdOfAuthor } from '../crypto/peer-id.js'
import type { Presence } from '../gossip/presence/index.js'
import type { BlobFetcher, Member, Membership } from '../jobs/index.js'

/**
 * Adapters from the network layers to the narrow ports of the jobs layer:
 * the jobs layer speaks of authors (log keys), libp2p of peer ids.
 */

/** Live members as the scheduler sees them, from presence heartbeats. */
export function membershipOf (presence: Presence): Membership {
  return {
    members (): Member[] {
      return presence.members().map((m) => ({
        author: m.author,
        platforms: m.heartbeat.platforms,
        slots: m.heartbeat.slots,
        free: m.heartbeat.free,
        running: m.heartbeat.running,
        accepts: m.heartbeat.accepts,
        ...(m.heartbeat.environments !== undefined ? { environments: m.heartbeat.environments } : {}),
        ...(m.heartbeat.polls === true ? { polls: true } : {}),
        lastSeen: m.lastSeen
      }))
    },
    update (state, options) {
      presence.update(state, { announce: options?.now === true ? 'now' : 'next' })
    },
    announcesWithinMs () {
      return presence.announcesWithinMs()
    }
  }
}

/**
 * Fetch a blob from the authors most likely to hold it, then from any other
 * connected peer (builders keep what they fetched and built, so anyone who
 * took part in a job may serve it). `findable` is called for each preferred
 * author first: it tells libp2p where that author may be dialed (only what
 * the address book allows), so that a fetch by peer id reaches an author
 * this node is not connected to.
 */
export function blobFetcherOf (exchange: BlobExchange, connectedPeers: () => PeerId[], findable?: (peer: PeerId) => Promise<void>): BlobFetcher {
  return {
    async fetch (hash, options) {
      const preferred = options.fromAuthors.map((author) => peerIdOfAuthor(author))
      if (findable !== undefined) await Promise.all(preferred.map(async (peer) => { await findable(peer).catch(() => {}) }))
      const others = connectedPeers().filter((p) => !preferred.some((q) => q.equals(p)))
      await exchange.fetch(hash, { from: [...preferred, ...others], ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}), ...(options.signal !== undefined ? { signal: options.signal } : {}) })
    }
  }
}
