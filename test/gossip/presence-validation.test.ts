import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { PublishConfigType } from '@libp2p/gossipsub/types'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { createPresence, PRESENCE_TOPIC, type Presence } from '../../src/gossip/presence/index.js'
import { authorOfPeerId } from '../../src/crypto/peer-id.js'
import type { MeshLibp2p } from '../../src/gossip/libp2p.js'
import { waitFor } from '../../src/util/wait.js'
import { meshPeer, observeWire, unsignedGossipPeer, wireIdOf, type WireMessage } from '../helpers/mesh-peer.js'
import { useTeardown } from '../helpers/temp-home.js'

const MARK = 'BAD-7f3a'

/** Well-signed messages that are not heartbeats: each must be refused by the topic validator. */
const MALFORMED: Record<string, string> = {
  notJson: `${MARK} this is not JSON`,
  otherShape: JSON.stringify({ hello: MARK }),
  futureVersion: JSON.stringify({ v: 2, platforms: ['linux-x64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: MARK, time: Date.now() }),
  freeAboveSlots: JSON.stringify({ v: 1, platforms: ['linux-x64'], slots: 1, free: 5, running: [], accepts: { network: false, root: false }, version: MARK, time: Date.now() }),
  badLabel: JSON.stringify({ v: 1, platforms: ['Linux X64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: MARK, time: Date.now() }),
  oversized: JSON.stringify({ v: 1, platforms: ['linux-x64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: MARK, time: Date.now(), padding: 'x'.repeat(20_000) })
}

/** A good heartbeat's shape: sent unsigned, or with a forged signature, it must still be refused. */
function plausibleHeartbeat (): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, platforms: ['linux-x64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: `${MARK}-ok`, time: Date.now() }))
}

async function presenceOn (node: MeshLibp2p, teardown: (fn: () => unknown) => void): Promise<Presence> {
  const presence = createPresence({ pubsub: node.services.pubsub, peerId: node.peerId }, {
    platforms: ['linux-x64'], slots: 1, version: '0.0.0-test', intervalMs: 300, timeoutMs: 3_000
  })
  await presence.start()
  teardown(async () => { await presence.stop() })
  return presence
}

function fromBad (messages: WireMessage[]): WireMessage[] {
  return messages.filter((m) => m.data.includes(MARK))
}

describe('presence topic validation (bad — A — B)', () => {
  const teardown = useTeardown()

  it('refuses unsigned, forged and malformed messages and never forwards them, while good heartbeats flow', async () => {
    const a = await meshPeer(teardown)
    const b = await meshPeer(teardown)
    const wireA = observeWire(a.services.pubsub)
    const wireB = observeWire(b.services.pubsub)
    const presenceA = await presenceOn(a, teardown)
    const presenceB = await presenceOn(b, teardown)

    // Three attackers, each connected to A only.
    const unsigned = await unsignedGossipPeer(teardown)
    const forger = await meshPeer(teardown)
    const malformed = await meshPeer(teardown)
    // The forger claims to be `victim` (from and key are the victim's) but signs with its own key.
    const victimKey = await generateKeyPair('Ed25519')
    const victim = peerIdFromPrivateKey(victimKey)
    const forgerKey = await generateKeyPair('Ed25519');
    (forger.services.pubsub as unknown as { publishConfig: unknown }).publishConfig = {
      type: PublishConfigType.Signing, author: victim, key: publicKeyToProtobuf(victimKey.publicKey), privateKey: forgerKey
    }

    await b.dial(a.getMultiaddrs()[0]!)
    for (const bad of [unsigned, forger, malformed]) {
      bad.services.pubsub.subscribe(PRESENCE_TOPIC)
      await bad.dial(a.getMultiaddrs()[0]!)
    }
    await waitFor(() => presenceB.member(authorOfPeerId(a.peerId)) !== undefined && presenceA.member(authorOfPeerId(b.peerId)) !== undefined,
      { timeoutMs: 15_000, what: 'A and B to hear each other' })
    await waitFor(() => [unsigned, forger, malformed].every((bad) => bad.services.pubsub.getSubscribers(PRESENCE_TOPIC).some((p) => p.equals(a.peerId))),
      { timeoutMs: 15_000, what: 'the attackers to see A on the presence topic' })

    // Keep attacking until A has received every kind of bad message from the wire.
    let attacking = true
    const attack = (async () => {
      while (attacking) {
        await unsigned.services.pubsub.publish(PRESENCE_TOPIC, plausibleHeartbeat()).catch(() => {})
        await forger.services.pubsub.publish(PRESENCE_TOPIC, plausibleHeartbeat()).catch(() => {})
        for (const text of Object.values(MALFORMED)) {
          await malformed.services.pubsub.publish(PRESENCE_TOPIC, new TextEncoder().encode(text)).catch(() => {})
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    })()
    try {
      await waitFor(() => {
        const atA = fromBad(wireA)
        return atA.some((m) => !m.signed) &&
          atA.some((m) => m.from === wireIdOf(victim)) &&
          Object.values(MALFORMED).every((text) => atA.some((m) => m.from === wireIdOf(malformed.peerId) && m.data === text))
      }, { timeoutMs: 20_000, what: 'A to receive every kind of bad message' })
    } finally {
      attacking = false
      await attack
    }
    const rejectedAtA = presenceA.stats.rejected
    expect(rejectedAtA).toBeGreaterThanOrEqual(Object.keys(MALFORMED).length)

    // Let A's good heartbeats keep reaching B for a while: anything A forwarded would have arrived by then.
    const heardBefore = presenceB.stats.accepted
    await waitFor(() => presenceB.stats.accepted >= heardBefore + 4, { timeoutMs: 15_000, what: 'B to keep hearing A' })

    expect(fromBad(wireB)).toEqual([])
    expect(wireB.filter((m) => m.topic === PRESENCE_TOPIC && m.from === wireIdOf(a.peerId)).length).toBeGreaterThan(0)
    expect(presenceB.stats.rejected).toBe(0)
    expect(presenceB.members().map((m) => m.peerId)).toEqual([a.peerId.toString()])
    expect(presenceA.members().map((m) => m.peerId)).toEqual([b.peerId.toString()])
    // B never met the attackers: the line topology held.
    expect(b.getConnections().map((c) => c.remotePeer.toString())).toEqual([a.peerId.toString()])
  })
})
