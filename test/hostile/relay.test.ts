import { describe, expect, it } from 'vitest'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { jobEntryRules } from '../../src/jobs/index.js'
import { Admission, type AdmissionQuotas, type Quota } from '../../src/ledger/admission/index.js'
import { EntryCodec } from '../../src/ledger/entry.js'
import { waitFor } from '../../src/util/wait.js'
import { hostilePeer, throwawayAuthor } from '../helpers/hostile-peer.js'
import { useTeardown } from '../helpers/temp-home.js'
import { connect, startNode, type TestNode } from '../ledger/mesh.js'

/**
 * Issue 12, attack 5, the penalty: excess is refused and the peer that sent
 * it penalised through gossipsub scoring — but an honest relay is never
 * punished for forwarding what it accepted. A flooder H reaches B only
 * through A: A Rejects H once H has delivered more strangers' entries than
 * an honest relay can (RELAY_QUOTA), so H's score at A drops; A forwards only
 * what it accepted, which never exceeds B's bound for A, so A's score at B
 * stays clean. Small quotas keep the test quick; the rule is the same.
 */

const codec = new EntryCodec(jobEntryRules)

function quotas (): AdmissionQuotas {
  const stranger: Quota = { entries: 10, entriesPerSecond: 1, bytes: 64 * 1024, bytesPerSecond: 8 * 1024 }
  const allStrangers: Quota = { entries: 40, entriesPerSecond: 4, bytes: 256 * 1024, bytesPerSecond: 32 * 1024 }
  return {
    member: { entries: 100, entriesPerSecond: 10, bytes: 1024 * 1024, bytesPerSecond: 64 * 1024 },
    stranger,
    allStrangers,
    relay: {
      entries: 2 * (allStrangers.entries + stranger.entries),
      entriesPerSecond: 2 * (allStrangers.entriesPerSecond + stranger.entriesPerSecond),
      bytes: 2 * (allStrangers.bytes + stranger.bytes),
      bytesPerSecond: 2 * (allStrangers.bytesPerSecond + stranger.bytesPerSecond)
    }
  }
}

/** The gossipsub score `node` gives `peer` (the score is not in the published type, but is part of gossipsub). */
function scoreOf (node: TestNode, peer: string): number {
  return (node.libp2p.services.pubsub as unknown as { getScore: (id: string) => number }).getScore(peer)
}

async function nodeWithQuotas (teardown: (fn: () => unknown) => void): Promise<TestNode & { admission: Admission }> {
  const key = generateNodeKey()
  const admission = new Admission({ self: key.publicHex, quotas: quotas() })
  const node = await startNode(teardown, { key, codec, admission })
  return Object.assign(node, { admission })
}

describe('attack 5: the flooder pays, the honest relay does not', { timeout: 180_000 }, () => {
  const teardown = useTeardown()

  it('A rejects H past what an honest relay can deliver and H\'s score drops; B takes what A forwards and A\'s score at B stays clean', async () => {
    const a = await nodeWithQuotas(teardown)
    const b = await nodeWithQuotas(teardown)
    await connect(a, b)
    const peer = await hostilePeer(teardown)
    const address = a.libp2p.getMultiaddrs()[0]!.toString()
    await peer.connect(address.includes('/p2p/') ? address : `${address}/p2p/${a.libp2p.peerId.toString()}`)
    await waitFor(() => b.libp2p.services.pubsub.getSubscribers('buildhaus/entries/1').some((p) => p.equals(a.libp2p.peerId)), { timeoutMs: 15_000, what: 'B to see A in the entries topic' })

    const spam = Array.from({ length: 300 }, (_, i) => throwawayAuthor().next({ clock: Date.now(), time: Date.now(), type: 'cancel', body: { job: i.toString(16).padStart(64, '0') } }))
    await peer.flood(spam, { perSecond: 100 })
    const hostileId = peer.libp2p.peerId.toString()
    await waitFor(() => scoreOf(a, hostileId) < 0, { timeoutMs: 30_000, what: 'A to penalise the flooder' })

    const atA = a.gossip.stats()
    const quotaA = a.admission.stats()
    const atB = b.gossip.stats()
    const quotaB = b.admission.stats()
    console.log(JSON.stringify({ atA, quotaA, atB, quotaB, hostileScoreAtA: scoreOf(a, hostileId), aScoreAtB: scoreOf(b, a.libp2p.peerId.toString()) }))
    // A took at most all strangers' quota, ignored the rest while H looked like a relay, then rejected H.
    expect(atA.accepted).toBeLessThanOrEqual(quotas().allStrangers.entries + 40)
    expect(atA.rejected).toBeGreaterThan(0)
    expect(quotaA.relayOverruns).toBeGreaterThan(0)
    // B got from A only what A accepted: never more than an honest relay can, so A is never penalised.
    expect(atB.accepted).toBeGreaterThan(0)
    expect(atB.accepted).toBeLessThanOrEqual(atA.accepted)
    expect(atB.rejected).toBe(0)
    expect(quotaB.relayOverruns).toBe(0)
    expect(scoreOf(b, a.libp2p.peerId.toString())).toBeGreaterThanOrEqual(0)
  })
})
