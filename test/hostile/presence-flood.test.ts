import { describe, expect, it } from 'vitest'
import { authorOfPeerId } from '../../src/crypto/peer-id.js'
import { MAX_PRESENCE_STRANGERS, PRESENCE_TOPIC } from '../../src/gossip/presence/index.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode, type StartNodeOptions } from '../../src/node/daemon.js'
import { waitFor } from '../../src/util/wait.js'
import { hostilePeer, throwawayPeerKey, type HostilePeer } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

async function node (teardown: Teardown, options: StartNodeOptions & { bootstrap?: string[] } = {}): Promise<RunningNode> {
  const home = await tempDir(teardown)
  const config = buildNodeConfig({ home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: options.bootstrap ?? [], mdns: false, platform: [], api: '127.0.0.1:0', slots: '0' }, {})
  const started = await startNode(config, { bootstrapTimeoutMs: 5_000, ...options })
  teardown(async () => { await started.stop() })
  return started
}

function heartbeat (): string {
  return JSON.stringify({ v: 1, platforms: ['linux-x64'], slots: 4, free: 4, running: [], accepts: { network: true, root: true }, version: '0.1.0', time: Date.now() })
}

/** Heartbeats from `count` fresh keys, none of which ever connected anywhere, all through one connection. */
async function flood (peer: HostilePeer, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const sent = await peer.publishAs(await throwawayPeerKey(), PRESENCE_TOPIC, heartbeat())
    if (sent === 0) throw new Error('the hostile peer has nobody to send to')
  }
}

const processed = (n: RunningNode): number => n.presence.stats.accepted + n.presence.stats.ignored

describe('presence tables under fresh keys (issue 12, presence bounds)', () => {
  const teardown = useTeardown()

  it(`heartbeats from ${MAX_PRESENCE_STRANGERS + 200} fresh keys leave the member table at its bound, and bound every per-peer map`, async () => {
    const a = await node(teardown)
    const peer = await hostilePeer(teardown)
    await peer.connect(a.listenAddresses()[0]!)
    await waitFor(() => peer.libp2p.services.pubsub.getSubscribers(PRESENCE_TOPIC).length > 0, { timeoutMs: 10_000, what: 'A to subscribe to presence' })
    const count = MAX_PRESENCE_STRANGERS + 200
    const before = processed(a)
    await flood(peer, count)
    await waitFor(() => processed(a) - before >= count, { timeoutMs: 60_000, intervalMs: 200, what: `A to take in ${count} heartbeats` })
    expect(a.presence.size).toBeLessThanOrEqual(MAX_PRESENCE_STRANGERS)
    expect(a.presence.stats.turnedAway).toBeGreaterThanOrEqual(200)
    // Nothing else grew with them: the keeper remembers only the peer it is connected to, nobody it could not reach.
    expect(a.keeper.status().map((t) => t.peerId)).toEqual([peer.peerId])
    expect(a.libp2p.getConnections().length).toBe(1)
  }, 120_000)

  it('when the table is full of strangers, a member still gets in: strangers are evicted first', async () => {
    const members = new Set<string>()
    const bounds: StartNodeOptions = { presence: { maxMembers: 30, maxStrangers: 30 }, isMember: (author) => members.has(author) }
    const a = await node(teardown, bounds)
    const peer = await hostilePeer(teardown)
    await peer.connect(a.listenAddresses()[0]!)
    await waitFor(() => peer.libp2p.services.pubsub.getSubscribers(PRESENCE_TOPIC).length > 0, { timeoutMs: 10_000, what: 'A to subscribe to presence' })
    await flood(peer, 80)
    await waitFor(() => processed(a) >= 80, { timeoutMs: 30_000, what: 'A to take in the flood' })
    expect(a.presence.size).toBe(30)

    const b = await node(teardown, { ...bounds, bootstrap: [a.listenAddresses()[0]!] })
    members.add(authorOfPeerId(b.peerId))
    await waitFor(() => a.presence.member(authorOfPeerId(b.peerId)) !== undefined, { timeoutMs: 15_000, what: 'A to hear member B despite the full table' })
    expect(a.presence.size).toBe(30)
  })
})
