import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { newSwarmKey, parseSwarmKey } from '../../src/gossip/nat/index.js'
import { buildNodeConfig, type NodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import { loadOrCreateIdentity } from '../../src/node/home/identity.js'
import { toHex } from '../../src/util/hex.js'
import { waitFor } from '../../src/util/wait.js'
import { hostilePeer } from '../helpers/hostile-peer.js'
import { carried, circuitAddress, reservedPeer, startRelay } from '../helpers/relay.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/**
 * Attacks at the connection level: strangers at a closed mesh's door, a node
 * without a private mesh's key, and peers that try to use a relay beyond its
 * bounds. Real libp2p nodes on loopback; the gater and libp2p's own relay are
 * what is under test.
 */

async function nodeConfig (teardown: Teardown, extra: Partial<Parameters<typeof buildNodeConfig>[0]> = {}): Promise<NodeConfig> {
  const home = await tempDir(teardown)
  return buildNodeConfig({ home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, platform: [], api: '127.0.0.1:0', slots: '0', ...extra }, {})
}

async function start (teardown: Teardown, config: NodeConfig, options: Parameters<typeof startNode>[1] = {}): Promise<RunningNode> {
  const node = await startNode(config, { writeApiFile: false, warn: () => {}, ...options })
  teardown(async () => { await node.stop() })
  return node
}

function authorOf (key: PrivateKey): string {
  return toHex(key.publicKey.raw)
}

function connected (node: { getConnections: (peer?: PeerId) => unknown[] }, peer: { peerId: PeerId }): boolean {
  return node.getConnections(peer.peerId).length > 0
}

describe('a closed mesh refuses strangers at the connection level', () => {
  const teardown = useTeardown()

  it('admits members and its bootstrap peer, refuses a non-member both ways, and closes the connection of a key that stops being a member', async () => {
    const members = new Set<string>()
    const isMember = (author: string): boolean => members.has(author)
    const node = await start(teardown, await nodeConfig(teardown), { closedMesh: { isMember } })
    members.add(node.author)
    const address = node.listenAddresses()[0]!

    const memberKey = await generateKeyPair('Ed25519')
    members.add(authorOf(memberKey))
    const member = await hostilePeer(teardown, { privateKey: memberKey })
    await member.connect(address)
    expect(connected(node.libp2p, member.libp2p)).toBe(true)

    // A stranger completes Noise (so its key is proven), then the node hangs up before any protocol runs.
    const stranger = await hostilePeer(teardown)
    await stranger.libp2p.dial(multiaddr(address)).catch(() => {})
    await waitFor(() => node.gater.stats().nonMembers >= 1, { timeoutMs: 5_000, what: 'the node to refuse the stranger' })
    await waitFor(() => !connected(stranger.libp2p, node.libp2p), { timeoutMs: 5_000, what: 'the stranger\'s connection to be closed' })
    expect(connected(node.libp2p, stranger.libp2p)).toBe(false)
    expect(node.libp2p.services.pubsub.getPeers().map(String)).not.toContain(stranger.peerId)
    // Nor does the node dial a stranger, whatever address it learns.
    const dialed = await node.libp2p.dial(stranger.libp2p.getMultiaddrs()[0]!).then(() => 'connected', (err: Error) => err.name)
    expect(dialed).not.toBe('connected')
    expect(node.gater.stats().nonMembers).toBeGreaterThanOrEqual(2)

    // The member is unvouched: the sweep closes its connection, and it cannot come back.
    members.delete(authorOf(memberKey))
    expect(node.gater.sweep()).toBe(1)
    await waitFor(() => !connected(node.libp2p, member.libp2p) && !connected(member.libp2p, node.libp2p), { timeoutMs: 5_000, what: 'the ex-member\'s connection to close' })
    const refusedBefore = node.gater.stats().nonMembers
    await member.libp2p.dial(multiaddr(address)).catch(() => {})
    await waitFor(() => node.gater.stats().nonMembers > refusedBefore && !connected(member.libp2p, node.libp2p), { timeoutMs: 5_000, what: 'the ex-member to be refused' })

    // A fresh member knows only the founders until it syncs (here: not the node); its configured bootstrap peer is let in.
    const freshConfig = await nodeConfig(teardown, { bootstrap: [address] })
    members.add((await loadOrCreateIdentity(freshConfig.home)).author)
    const fresh = await start(teardown, freshConfig, { closedMesh: { isMember: (author) => author !== node.author && isMember(author) } })
    await waitFor(() => connected(fresh.libp2p, node.libp2p) && connected(node.libp2p, fresh.libp2p), { timeoutMs: 5_000, what: 'the fresh member and its bootstrap peer to stay connected' })
  }, 60_000)
})

describe('a private mesh (swarm key)', () => {
  const teardown = useTeardown()

  it('lets in only the holders of its key: a stranger, or a node of another private mesh, cannot even finish a handshake', async () => {
    const dir = await tempDir(teardown)
    const keyFile = join(dir, 'swarm.key')
    await writeFile(keyFile, newSwarmKey(), { mode: 0o600 })
    const node = await start(teardown, await nodeConfig(teardown, { swarmKey: keyFile }))
    const address = multiaddr(node.listenAddresses()[0]!)
    expect((await (await fetch(`${node.apiUrl}/api/health`)).json() as { network: { private: boolean } }).network.private).toBe(true)

    const holder = await hostilePeer(teardown, { swarmKey: parseSwarmKey(await readFile(keyFile, 'utf8')) })
    await holder.libp2p.dial(address)
    await waitFor(() => connected(node.libp2p, holder.libp2p), { timeoutMs: 5_000, what: 'the key holder to be connected' })

    // Without the key the bytes are noise to the node: the handshake never completes, the dial fails.
    const stranger = await hostilePeer(teardown)
    const strangerDial = await stranger.libp2p.dial(address).then(() => 'connected', (err: Error) => err.name)
    const otherMesh = await hostilePeer(teardown, { swarmKey: parseSwarmKey(newSwarmKey()) })
    const otherDial = await otherMesh.libp2p.dial(address).then(() => 'connected', (err: Error) => err.name)
    expect([strangerDial, otherDial]).not.toContain('connected')
    expect(connected(node.libp2p, stranger.libp2p) || connected(node.libp2p, otherMesh.libp2p)).toBe(false)
  }, 60_000)

  it('refuses a malformed key file with one sentence that says what is wrong, before starting anything', async () => {
    const dir = await tempDir(teardown)
    const cases: Array<[string, RegExp]> = [
      ['not a key', /is not a swarm key: it must be three lines/],
      ['/key/swarm/psk/1.0.0/\n/base64/\nAAAA', /uses the encoding "\/base64\/"; only \/base16\/ is supported/],
      ['/key/swarm/psk/1.0.0/\n/base16/\nabcd', /key line must be exactly 64 hex digits \(32 bytes\), not 4 characters/]
    ]
    for (const [text, message] of cases) {
      const file = join(dir, `bad-${cases.findIndex((c) => c[0] === text)}.key`)
      await writeFile(file, text, { mode: 0o600 })
      const config = await nodeConfig(teardown, { swarmKey: file })
      await expect(startNode(config, { writeApiFile: false })).rejects.toMatchObject({ name: 'UsageError', message: expect.stringMatching(message) })
      // Nothing was made in the home: no key, no log.
      expect(await readdir(config.home)).toEqual([])
    }
    await expect(startNode(await nodeConfig(teardown, { swarmKey: join(dir, 'missing.key') }), { writeApiFile: false })).rejects.toMatchObject({ name: 'UsageError', message: expect.stringMatching(/does not exist; make a key with `buildhaus-node swarm-key/) })
  }, 60_000)
})

describe('a relay is bounded', () => {
  const teardown = useTeardown()

  it('refuses relayed connections beyond the per-peer bound and the per-peer rate, and reservations beyond the per-address bound', async () => {
    const { libp2p: relay, gater } = await startRelay(teardown, { gater: { relayLimits: { maxCircuitsPerPeer: 2, circuitsPerWindow: 3, windowMs: 60_000, maxReservationsPerIp: 3 } } })
    const targets = [await reservedPeer(teardown, relay), await reservedPeer(teardown, relay), await reservedPeer(teardown, relay)]
    // A fourth reservation from the same address (loopback) is refused.
    const extra = await hostilePeer(teardown, { nat: { relay: 'off', reserve: true, upnp: false, holePunch: false } })
    await extra.libp2p.dial(relay.getMultiaddrs()[0]!)
    await waitFor(() => gater.stats().reservations > 0, { timeoutMs: 10_000, what: 'the fourth reservation from one address to be refused' })
    expect(relay.services.relay!.reservations.size).toBe(3)

    const attacker = await hostilePeer(teardown, { nat: { relay: 'off', reserve: false, upnp: false, holePunch: false } })
    await attacker.libp2p.dial(relay.getMultiaddrs()[0]!)
    // Two circuits at once are allowed, the third is not.
    const first = await attacker.libp2p.dial(circuitAddress(relay, targets[0]!))
    await attacker.libp2p.dial(circuitAddress(relay, targets[1]!))
    expect(first.limits).toBeDefined()
    await expect(attacker.libp2p.dial(circuitAddress(relay, targets[2]!))).rejects.toThrow()
    expect(gater.stats().circuits).toBe(1)
    // Hanging up and reconnecting does not reset the rate: the window allows three circuits in all.
    await first.close()
    await waitFor(() => carried(relay) === 1, { timeoutMs: 5_000, what: 'the relay to see the first circuit close' })
    await attacker.libp2p.dial(circuitAddress(relay, targets[0]!))
    await attacker.libp2p.hangUp(targets[0]!.peerId)
    await waitFor(() => carried(relay) === 1, { timeoutMs: 5_000, what: 'the relay to see the third circuit close' })
    await expect(attacker.libp2p.dial(circuitAddress(relay, targets[0]!))).rejects.toThrow()
    expect(gater.stats().circuits).toBe(2)
  }, 90_000)

  it('a node with no public address does not relay for others (auto mode): a reservation is refused', async () => {
    const node = await start(teardown, await nodeConfig(teardown))
    expect(node.reachability()).not.toBe('public')
    const peer = await hostilePeer(teardown, { nat: { relay: 'off', reserve: true, upnp: false, holePunch: false } })
    await peer.libp2p.dial(multiaddr(node.listenAddresses()[0]!))
    await waitFor(() => node.gater.stats().reservations > 0, { timeoutMs: 10_000, what: 'the reservation to be refused' })
    expect(node.libp2p.services.relay?.reservations.size ?? 0).toBe(0)
  }, 60_000)
})
