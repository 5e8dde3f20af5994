import { describe, it } from 'vitest'
import { createPresence, type Presence } from '../../src/gossip/presence/index.js'
import type { MeshLibp2p } from '../../src/gossip/libp2p.js'
import { waitFor } from '../../src/util/wait.js'
import { meshPeer } from '../helpers/mesh-peer.js'
import { useTeardown } from '../helpers/temp-home.js'

describe('many peers from one address', () => {
  const teardown = useTeardown()

  // Gossipsub's default peer scoring graylists every peer once more than 10 share an IP
  // address: a hub in front of a lab behind NAT (or a test cluster) would then relay nothing.
  it('a hub with 14 spokes on one address relays every heartbeat to every spoke', async () => {
    const nodes: Array<{ node: MeshLibp2p, presence: Presence }> = []
    for (let i = 0; i < 15; i++) {
      const node = await meshPeer(teardown)
      const presence = createPresence({ pubsub: node.services.pubsub, peerId: node.peerId }, { platforms: ['linux-x64'], slots: 1, version: '0.0.0-test', intervalMs: 500, timeoutMs: 5_000 })
      await presence.start()
      teardown(async () => { await presence.stop() })
      nodes.push({ node, presence })
    }
    const hub = nodes[0]!.node.getMultiaddrs()[0]!
    // Spokes connect to the hub only, so everything they hear of each other went through it.
    for (const { node } of nodes.slice(1)) {
      await waitFor(async () => await node.dial(hub).then(() => true), { timeoutMs: 10_000, intervalMs: 300, what: 'a spoke to reach the hub' })
    }
    await waitFor(() => nodes.every(({ presence }) => presence.size === nodes.length - 1), { timeoutMs: 30_000, intervalMs: 100, what: 'every node to hear all 14 others through the hub' })
  })
})
