import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { blobExchange, type BlobExchange } from '../../src/blobs/exchange/index.js'
import { BlobStore } from '../../src/blobs/store.js'
import { reachTracker } from '../../src/gossip/nat/index.js'
import type { MeshLibp2p } from '../../src/gossip/libp2p.js'
import { waitFor } from '../../src/util/wait.js'
import { circuitAddress, reservedPeer, startRelay } from '../helpers/relay.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/**
 * Peers that can reach each other only through a relay: libp2p's circuit
 * relay v2 with the project's limits, real nodes on loopback. Both peers
 * hold a reservation and are dialed by their relayed address only, as two
 * volunteers behind NAT would be.
 */

/** Relayed connections in this test may carry this much; the relay resets them beyond it. */
const DATA_LIMIT = 512 * 1024

async function withExchange (teardown: Teardown, libp2p: MeshLibp2p): Promise<{ store: BlobStore, exchange: BlobExchange }> {
  const store = await BlobStore.open({ dir: join(await tempDir(teardown), 'blobs'), maxBytes: 64 * 1024 * 1024 })
  const exchange = blobExchange({ network: libp2p, store })
  await exchange.start()
  teardown(async () => { await exchange.stop() })
  return { store, exchange }
}

async function put (store: BlobStore, bytes: Buffer): Promise<string> {
  return (await store.put(Readable.from([bytes]))).hash
}

describe('peers reachable only through a relay', () => {
  const teardown = useTeardown()

  it('fetch blobs over the relayed connection within its byte limit, refuse a larger blob without reading it, and report a later direct connection as an upgrade', async () => {
    const { libp2p: relay } = await startRelay(teardown, { nat: { relayLimits: { dataBytes: DATA_LIMIT } } })
    const holder = await reservedPeer(teardown, relay)
    const fetcher = await reservedPeer(teardown, relay)
    const reach = reachTracker(fetcher)
    await reach.start()
    teardown(async () => { await reach.stop() })
    const held = await withExchange(teardown, holder)
    const wanting = await withExchange(teardown, fetcher)

    const connection = await fetcher.dial(circuitAddress(relay, holder))
    expect(connection.limits?.bytes).toBeDefined()
    expect(reach.reachOf(holder.peerId)).toBe('relayed')

    // A source tarball that fits is fetched over the relay.
    const small = await put(held.store, randomBytes(100 * 1024))
    await wanting.exchange.fetch(small, { from: [holder.peerId] })
    expect(await wanting.store.verify(small)).toBe(true)
    expect(wanting.exchange.stats()).toMatchObject({ fetched: 1, fetchedRelayed: 1 })
    expect(held.exchange.stats()).toMatchObject({ served: 1, servedRelayed: 1 })

    // One that does not fit what the connection has left is not attempted: it needs a direct connection.
    const large = await put(held.store, randomBytes(DATA_LIMIT))
    await expect(wanting.exchange.fetch(large, { from: [holder.peerId] })).rejects.toMatchObject({
      name: 'BlobUnavailableError',
      message: expect.stringMatching(/more than the relayed connection may still carry .*needs a direct connection/)
    })
    expect(held.exchange.stats().served).toBe(1)

    // The peers find a direct path (what DCUtR does where the NAT allows): the direct connection is an upgrade.
    await fetcher.dial(holder.getMultiaddrs().find((a) => !a.toString().includes('/p2p-circuit'))!)
    expect(reach.reachOf(holder.peerId)).toBe('hole-punched')
    expect(reach.stats()).toMatchObject({ upgraded: 1 })
    // Blobs now go direct, whatever their size.
    await wanting.exchange.fetch(large, { from: [holder.peerId] })
    expect(wanting.exchange.stats()).toMatchObject({ fetched: 2, fetchedRelayed: 1 })

    // The relayed connection goes; the peer stays reached directly.
    await connection.close()
    await waitFor(() => fetcher.getConnections(holder.peerId).every((c) => c.limits === undefined), { timeoutMs: 5_000, what: 'the relayed connection to close' })
    expect(reach.reachOf(holder.peerId)).toBe('hole-punched')
  }, 60_000)

  it('prefer a direct candidate to a relayed one for the same blob', async () => {
    const { libp2p: relay } = await startRelay(teardown)
    const relayedHolder = await reservedPeer(teardown, relay)
    const directHolder = await reservedPeer(teardown, relay)
    const fetcher = await reservedPeer(teardown, relay)
    const stores = [await withExchange(teardown, relayedHolder), await withExchange(teardown, directHolder)]
    const wanting = await withExchange(teardown, fetcher)
    const bytes = randomBytes(64 * 1024)
    const hash = await put(stores[0]!.store, bytes)
    await put(stores[1]!.store, bytes)
    await fetcher.dial(circuitAddress(relay, relayedHolder))
    await fetcher.dial(directHolder.getMultiaddrs().find((a) => !a.toString().includes('/p2p-circuit'))!)

    // The relayed holder is named first, as the author most likely to hold it; the direct one serves it.
    const result = await wanting.exchange.fetch(hash, { from: [relayedHolder.peerId, directHolder.peerId] })
    expect(result.from).toBe(directHolder.peerId.toString())
    expect(wanting.exchange.stats().fetchedRelayed).toBe(0)
  }, 60_000)
})
