import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { authorOfPeerId } from '../../src/crypto/peer-id.js'
import { buildNodeConfig, type NodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode, type StartNodeOptions } from '../../src/node/daemon.js'
import { waitFor } from '../../src/util/wait.js'
import { hostilePeer, type HostilePeer } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/** Fast presence and keeper, so that what would take a minute in production shows in seconds. */
const FAST: StartNodeOptions = {
  presence: { intervalMs: 300, timeoutMs: 2_000 },
  keeper: { intervalMs: 200, maxIntervalMs: 800, tickMs: 100, dialTimeoutMs: 1_000, silentMs: 3_000 },
  introductions: { askIntervalMs: 1_500 },
  bootstrapTimeoutMs: 5_000
}

async function config (teardown: Teardown, options: { bootstrap?: string[], port?: number } = {}): Promise<NodeConfig> {
  const home = await tempDir(teardown)
  return buildNodeConfig({
    home,
    listen: [`/ip4/127.0.0.1/tcp/${options.port ?? 0}`],
    bootstrap: options.bootstrap ?? [],
    mdns: false,
    platform: [],
    api: '127.0.0.1:0',
    slots: '0'
  }, {})
}

/** An in-process node (real libp2p, LevelDB, presence, keeper), stopped at teardown. */
async function node (teardown: Teardown, options: { bootstrap?: string[], port?: number, home?: NodeConfig } = {}): Promise<RunningNode> {
  const started = await startNode(options.home ?? await config(teardown, options), FAST)
  teardown(async () => { await started.stop() })
  return started
}

/** A TCP listener that counts the connections it is offered: what a port scan or a reflected dial looks like from the target. */
async function target (teardown: Teardown, host = '127.0.0.1'): Promise<{ port: number, connections: () => number }> {
  let count = 0
  const server = createServer((socket) => { count++; socket.destroy() })
  await new Promise<void>((resolve, reject) => { server.once('error', reject).listen(0, host, resolve) })
  teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  return { port: (server.address() as { port: number }).port, connections: () => count }
}

function heartbeat (addrs: string[]): Record<string, unknown> {
  return { v: 1, platforms: ['linux-x64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: '0.1.0', addrs, time: Date.now() }
}

function hears (listener: RunningNode, peerId: string): boolean {
  return listener.presence.members().some((m) => m.peerId === peerId)
}

function connected (a: RunningNode, peerId: string): boolean {
  return a.libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId)
}

/** Keep a hostile peer's heartbeats coming while `until` is awaited. */
async function heartbeating<T> (peer: HostilePeer, addrs: string[], until: () => Promise<T>): Promise<T> {
  let going = true
  const beats = (async () => {
    while (going) {
      await peer.publishHeartbeat(heartbeat(addrs)).catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  })()
  try {
    return await until()
  } finally {
    going = false
    await beats
  }
}

async function mesh (teardown: Teardown): Promise<RunningNode[]> {
  const a = await node(teardown)
  const b = await node(teardown, { bootstrap: [a.listenAddresses()[0]!] })
  const c = await node(teardown, { bootstrap: [a.listenAddresses()[0]!] })
  await waitFor(() => hears(b, c.peerId.toString()) && hears(c, b.peerId.toString()), { timeoutMs: 15_000, what: 'B and C to hear each other through A' })
  return [a, b, c]
}

describe('dial only what was seen (issue 12, item 7)', () => {
  const teardown = useTeardown()

  it('an address a heartbeat merely claims draws no connection from any node', async () => {
    const nodes = await mesh(teardown)
    const scanned = await target(teardown)
    const peer = await hostilePeer(teardown)
    await peer.connect(nodes[0]!.listenAddresses()[0]!)
    // The peer is real and reachable where it listens; its heartbeats say it is somewhere else (a port a scan would probe).
    await heartbeating(peer, [`/ip4/127.0.0.1/tcp/${scanned.port}`], async () => {
      await waitFor(() => nodes.every((n) => hears(n, peer.peerId)), { timeoutMs: 15_000, what: 'every node to hear the hostile peer' })
      // B and C meet it the way they meet anyone: through an introduction by A, which saw it on a real connection.
      await waitFor(() => connected(nodes[1]!, peer.peerId) && connected(nodes[2]!, peer.peerId), {
        timeoutMs: 15_000,
        what: 'B and C to reach the hostile peer where it really listens'
      })
    })
    expect(scanned.connections()).toBe(0)
  })

  it('an address identify claims on another host draws no connection: the peer is dialed again where its connection came from', async () => {
    const [a] = await mesh(teardown)
    const elsewhere = await target(teardown, '127.0.0.2')
    const peer = await hostilePeer(teardown, { announce: [`/ip4/127.0.0.2/tcp/${elsewhere.port}`] })
    await peer.connect(a!.listenAddresses()[0]!)
    await heartbeating(peer, [], async () => {
      await waitFor(() => hears(a!, peer.peerId), { timeoutMs: 15_000, what: 'A to hear the hostile peer' })
    })
    // It hangs up while A still counts it as a member: A's keeper dials it again, where it saw it.
    const reconnected = new Promise<void>((resolve) => {
      peer.libp2p.addEventListener('connection:open', (event) => { if (event.detail.remotePeer.equals(a!.peerId)) resolve() })
    })
    await peer.libp2p.hangUp(a!.peerId)
    await reconnected
    expect(elsewhere.connections()).toBe(0)
  })

  it('the mesh still survives its bootstrap node leaving: members introduced to each other re-dial each other', async () => {
    const [a, b, c] = await mesh(teardown)
    await waitFor(() => connected(b!, c!.peerId.toString()), { timeoutMs: 15_000, what: 'B to connect to C directly' })
    await waitFor(() => b!.keeper.status().some((t) => t.peerId === c!.peerId.toString() && t.addresses.length > 0), { timeoutMs: 15_000, what: 'B to know where C listens' })
    const cPort = Number(/\/tcp\/(\d+)/.exec(c!.listenAddresses()[0]!)![1])
    const cHome = c!.config
    await a!.stop()
    await c!.stop()
    await waitFor(() => !hears(b!, c!.peerId.toString()), { timeoutMs: 10_000, what: 'B to notice C left' })
    // C comes back where it was, with its key; nobody is left to introduce anyone.
    const back = await node(teardown, { home: { ...cHome, listen: [`/ip4/127.0.0.1/tcp/${cPort}`], bootstrap: [] } })
    await waitFor(() => hears(b!, back.peerId.toString()) && hears(back, b!.peerId.toString()), { timeoutMs: 15_000, what: 'B and C to find each other again without A' })
    expect(authorOfPeerId(back.peerId)).toBe(authorOfPeerId(c!.peerId))
  })
})
