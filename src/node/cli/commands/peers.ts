import { connectFromOptions } from '../client.js'
import type { PeersResponse, PeerView } from '../../api/types.js'
import { ApiRequestError } from '../../errors.js'
import { defineCommand } from '../command.js'
import { peersSpec } from '../specs.js'
import { formatAge, formatTable } from '../table.js'

export const peersCommand = defineCommand({
  ...peersSpec,
  async run (options, _positionals, io) {
    const client = await connectFromOptions(options, io.env)
    const answer = await client.getJson<PeersResponse>('/api/peers', { signal: io.signal })
    if (!Array.isArray(answer.peers)) throw new ApiRequestError(`${client.url} answered /api/peers without a peer list; is it a buildhaus node?`)
    if (options.json) {
      io.stdout.write(`${JSON.stringify(answer)}\n`)
      return 0
    }
    io.stdout.write(peersTable(answer.peers, Date.now()))
    return 0
  }
})

/**
 * How a peer is reached: direct, hole-punched (a direct connection that
 * replaced a relayed one), relayed, or - (no connection; heard through
 * gossip). This node's own row says how others reach it: public, relayed
 * or private.
 */
function reachText (peer: PeerView): string {
  if (peer.self) return peer.reachability ?? '-'
  return peer.reach === undefined || peer.reach === 'none' ? '-' : peer.reach
}

export function peersTable (peers: PeerView[], now: number): string {
  const rows = peers.map((p) => [
    p.self ? `${p.peerId} *` : p.peerId,
    p.platforms.join(','),
    `${p.free}/${p.slots}`,
    String(p.running.length),
    p.self ? 'self' : formatAge(now - p.lastSeen),
    p.version,
    reachText(p),
    p.addresses[0] ?? '-'
  ])
  const others = peers.filter((p) => !p.self).length
  return formatTable(['PEER ID', 'PLATFORMS', 'FREE', 'RUNNING', 'SEEN', 'VERSION', 'REACH', 'ADDRESS'], rows) +
    `${others} peer${others === 1 ? '' : 's'} besides this node (*)\n`
}
