import { describe, expect, it } from 'vitest'
import { GOSSIP_MESH, IDONTWANT_MIN_BYTES } from '../../src/gossip/constants.js'
import type { MeshLibp2p } from '../../src/gossip/libp2p.js'
import { waitFor } from '../../src/util/wait.js'
import { meshPeer } from '../helpers/mesh-peer.js'
import { useTeardown } from '../helpers/temp-home.js'

const TOPIC = 'buildhaus/test-mesh/1'

interface Rpc { messages?: Array<{ topic?: string }>, control?: { idontwant?: Array<{ messageIDs?: unknown[] }> } }

/** Counts, over every node, the messages on TOPIC and the IDONTWANT ids gossipsub received. */
function countReceived (nodes: MeshLibp2p[]): { messages: number, idontwant: number } {
  const counts = { messages: 0, idontwant: 0 }
  for (const node of nodes) {
    const pubsub = node.services.pubsub as unknown as { handleReceivedRpc: (from: unknown, rpc: Rpc) => Promise<void> }
    const received = pubsub.handleReceivedRpc.bind(pubsub)
    pubsub.handleReceivedRpc = async (from, rpc) => {
      counts.messages += (rpc.messages ?? []).filter((m) => m.topic === TOPIC).length
      for (const part of rpc.control?.idontwant ?? []) counts.idontwant += part.messageIDs?.length ?? 0
      await received(from, rpc)
    }
  }
  return counts
}

function meshSizes (nodes: MeshLibp2p[]): number[] {
  // Gossipsub's own mesh (not in its typed interface).
  return nodes.map((n) => (n.services.pubsub as unknown as { mesh: Map<string, Set<string>> }).mesh.get(TOPIC)?.size ?? 0)
}

describe('gossip mesh degree and IDONTWANT (src/gossip/constants.ts)', () => {
  const teardown = useTeardown()

  // Every copy of a message beyond the first costs its receiver the same transport work as
  // the delivery; gossipsub's defaults let a well-connected node keep up to 12 mesh peers.
  it('ten fully connected nodes keep 3–6 mesh peers each, every message reaches all, small ones get no IDONTWANT', async () => {
    const nodes: MeshLibp2p[] = []
    for (let i = 0; i < 10; i++) nodes.push(await meshPeer(teardown, { topics: [TOPIC] }))
    // libp2p refuses more than a few inbound connections a second from one address: retry.
    for (const [i, a] of nodes.entries()) {
      for (const b of nodes.slice(i + 1)) {
        await waitFor(async () => await a.dial(b.getMultiaddrs()[0]!).then(() => true), { timeoutMs: 20_000, intervalMs: 300, what: 'a connection between two test nodes' })
      }
    }
    for (const node of nodes) node.services.pubsub.subscribe(TOPIC)
    await waitFor(() => meshSizes(nodes).every((size) => size >= GOSSIP_MESH.Dlo && size <= GOSSIP_MESH.Dhi), {
      timeoutMs: 30_000, intervalMs: 100, what: `every mesh to hold ${GOSSIP_MESH.Dlo}–${GOSSIP_MESH.Dhi} peers`
    })

    const counts = countReceived(nodes)
    const heard = nodes.map(() => 0)
    nodes.forEach((node, i) => {
      node.services.pubsub.addEventListener('message', (evt) => { if (evt.detail.topic === TOPIC) heard[i]!++ })
    })
    // An entry-sized message: delivered to all nine others, with no IDONTWANT for it.
    await nodes[0]!.services.pubsub.publish(TOPIC, new Uint8Array(2_000).fill(1))
    await waitFor(() => heard.slice(1).every((n) => n === 1), { timeoutMs: 20_000, intervalMs: 50, what: 'every node to hear the small message' })
    expect(counts.idontwant).toBe(0)
    // A large one still gets them: there a duplicate costs more than the IDONTWANT.
    await nodes[1]!.services.pubsub.publish(TOPIC, new Uint8Array(IDONTWANT_MIN_BYTES + 1_000).fill(2))
    await waitFor(() => heard.every((n, i) => n === (i === 0 ? 1 : i === 1 ? 1 : 2)), { timeoutMs: 20_000, intervalMs: 50, what: 'every node to hear the large message' })
    await waitFor(() => counts.idontwant > 0, { timeoutMs: 10_000, intervalMs: 50, what: 'IDONTWANTs for the large message' })
  })
})
