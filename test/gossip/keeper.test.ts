import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { authorOfPeerId } from '../../src/crypto/peer-id.js'
import { createAddressBook, REDIALABLE, type AddressBook } from '../../src/gossip/address-book.js'
import { createIntroductions, type Introductions } from '../../src/gossip/introductions/index.js'
import { createMeshKeeper, parseBootstrapAddress, type MeshKeeper } from '../../src/gossip/keeper.js'
import type { MeshLibp2p } from '../../src/gossip/libp2p.js'
import { createPresence, type Presence } from '../../src/gossip/presence/index.js'
import { waitFor } from '../../src/util/wait.js'
import { meshPeer } from '../helpers/mesh-peer.js'
import { useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

interface Member {
  key: PrivateKey
  port: number
  node: MeshLibp2p
  presence: Presence
  keeper: MeshKeeper
  book: AddressBook
  introductions: Introductions
  address: string
}

/**
 * A gossip-layer member wired as the daemon wires it: the address book gates
 * every dial, presence heartbeats feed the keeper, and the keeper asks
 * trusted peers (bootstrap ones here) for introductions while it wants peers.
 */
async function member (teardown: Teardown, options: { key?: PrivateKey, port?: number, bootstrap?: string[] } = {}): Promise<Member> {
  const key = options.key ?? await generateKeyPair('Ed25519')
  const book = createAddressBook({ bootstrap: options.bootstrap ?? [] })
  const node = await meshPeer(teardown, { privateKey: key, gater: book.gater, ...(options.port !== undefined ? { port: options.port } : {}) })
  book.start(node)
  const introductions = createIntroductions({ network: node, book }, { askIntervalMs: 1_500 })
  await introductions.start()
  const presence = createPresence({ pubsub: node.services.pubsub, peerId: node.peerId, addresses: () => node.getMultiaddrs() }, {
    platforms: ['linux-x64'], slots: 1, version: '0.0.0-test', intervalMs: 300, timeoutMs: 1_500
  })
  // Short back-off so a test can outlast libp2p's own few retries in seconds.
  const keeper = createMeshKeeper(node, {
    bootstrap: options.bootstrap ?? [], book, wantPeers: () => { introductions.ask() }, intervalMs: 200, maxIntervalMs: 800, tickMs: 100, dialTimeoutMs: 1_000, silentMs: 3_000
  })
  presence.addEventListener('heartbeat', (event) => { keeper.heard(peerIdFromString(event.detail.peerId), event.detail.heartbeat.addrs) })
  await presence.start()
  await keeper.start()
  teardown(async () => { await keeper.stop(); await presence.stop(); await introductions.stop().catch(() => {}); book.stop() })
  const address = node.getMultiaddrs()[0]!.toString()
  return { key, port: Number(/\/tcp\/(\d+)/.exec(address)![1]), node, presence, keeper, book, introductions, address }
}

async function halt (m: Member): Promise<void> {
  await m.keeper.stop()
  await m.presence.stop()
  await m.introductions.stop().catch(() => {})
  m.book.stop()
  await m.node.stop()
}

function hears (listener: Member, speaker: Member): boolean {
  return listener.presence.member(authorOfPeerId(speaker.node.peerId)) !== undefined
}

describe('MeshKeeper', () => {
  const teardown = useTeardown()

  it('reconnects to a bootstrap peer that was gone for longer than libp2p keeps retrying', async () => {
    const a = await member(teardown)
    const b = await member(teardown, { bootstrap: [a.address] })
    await waitFor(() => hears(a, b) && hears(b, a), { timeoutMs: 10_000, what: 'A and B to hear each other' })

    await halt(a)
    // Many failed dials in a row: the keeper backs off but does not give up.
    await waitFor(() => b.keeper.status().some((t) => t.bootstrap && t.failures >= 6), { timeoutMs: 20_000, what: 'B to fail six dials to A' })
    await waitFor(() => !hears(b, a), { timeoutMs: 5_000, what: 'B to notice A left' })

    // A comes back at the same address with the same key (a restart on its fixed port).
    const back = await member(teardown, { key: a.key, port: a.port })
    await waitFor(() => hears(back, b) && hears(b, back), { timeoutMs: 10_000, what: 'the mesh to heal' })
    expect(b.keeper.status().find((t) => t.bootstrap)).toMatchObject({ connected: true, failures: 0 })
  })

  it('keeps re-dialing members it met through presence, with the bootstrap peer gone', async () => {
    const a = await member(teardown)
    const b = await member(teardown, { bootstrap: [a.address] })
    const c = await member(teardown, { bootstrap: [a.address] })
    await waitFor(() => hears(b, c) && hears(c, b), { timeoutMs: 10_000, what: 'B and C to hear each other through A' })
    // B and C dial each other directly once A introduced them, so A is no longer needed.
    await waitFor(() => b.node.getConnections(c.node.peerId).length > 0, { timeoutMs: 10_000, what: 'B to connect to C directly' })
    // Whichever of them dialed, B has seen where C listens (its own dial, or identify on C's connection).
    // Not merely A's introduction: that address is dialed once, and the first dial after C stops fails.
    // Identify can finish well after the connection opens (on a loaded machine, often after C's first heartbeats).
    await waitFor(() => b.book.known(c.node.peerId).some((k) => REDIALABLE.has(k.source)), { timeoutMs: 10_000, what: 'B to see where C listens (proven or observed, not only introduced)' })
    // And B keeps C among its targets: C's first heartbeats may have come through A, before B could reach C
    // itself, and only a heartbeat heard once B can reach C makes it one (on a busy machine C could stop first).
    await waitFor(() => b.keeper.status().some((t) => t.peerId === c.node.peerId.toString()), { timeoutMs: 10_000, what: 'B to keep C as a target' })
    await halt(a)

    await halt(c)
    await waitFor(() => !hears(b, c), { timeoutMs: 5_000, what: 'B to notice C left' })
    const cBack = await member(teardown, { key: c.key, port: c.port })
    await waitFor(() => hears(b, cBack) && hears(cBack, b), { timeoutMs: 10_000, what: 'B to find C again without any bootstrap peer' })
  })

  it('hangs up on a member that stays connected but silent, and dials it afresh', async () => {
    const a = await member(teardown)
    const b = await member(teardown, { bootstrap: [a.address] })
    await waitFor(() => hears(a, b) && hears(b, a), { timeoutMs: 10_000, what: 'A and B to hear each other' })
    let dropped = 0
    b.node.addEventListener('peer:disconnect', (event) => { if (event.detail.equals(a.node.peerId)) dropped++ })
    // A's libp2p lives on, but nothing it sends reaches B's presence any more: half-attached.
    await a.presence.stop()
    await waitFor(() => dropped > 0, { timeoutMs: 10_000, what: 'B to hang up on the silent A' })
    await waitFor(() => b.node.getConnections(a.node.peerId).length > 0, { timeoutMs: 10_000, what: 'B to dial A again' })
  })

  it('refuses bootstrap addresses without a peer id, and says at start when none answers', async () => {
    expect(() => parseBootstrapAddress('/ip4/127.0.0.1/tcp/4710')).toThrow(/add \/p2p\/<peer id>/)
    expect(() => parseBootstrapAddress('not-a-multiaddr')).toThrow(/not a valid multiaddr/)
    const lonely = await meshPeer(teardown)
    const nobody = (await meshPeer(teardown)).peerId
    const bootstrap = [`/ip4/127.0.0.1/tcp/1/p2p/${nobody.toString()}`]
    const keeper = createMeshKeeper(lonely, { bootstrap, book: createAddressBook({ bootstrap }) })
    await expect(keeper.connectBootstrap(3_000)).rejects.toMatchObject({
      name: 'BootstrapUnreachableError',
      message: expect.stringMatching(/^cannot reach the bootstrap peer \/ip4\/127\.0\.0\.1\/tcp\/1\/p2p\/\S+: .*ECONNREFUSED.*; check that the peer is running/)
    })
  })
})
