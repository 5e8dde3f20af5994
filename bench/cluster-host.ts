import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { buildNodeConfig } from '../src/node/config.js'
import { startNode, type RunningNode } from '../src/node/daemon.js'
import { createExecutor, type Executor } from '../src/sandbox/index.js'

/**
 * One process hosting several buildhaus nodes for bench/cluster.ts: each a
 * full startNode (its own key, LevelDB, libp2p, presence, keeper, job
 * service and API on loopback), all sharing one sandbox executor. Two cores
 * cannot run fifty Node processes of ~100 MB each comfortably, nor can one
 * event loop carry fifty nodes' handshakes; a few processes of ten can.
 *
 *   node dist/bench/cluster-host.js '{"dir":…,"first":0,"count":10,"bootstrap":[…],"sandbox":"bubblewrap"}'
 *
 * Prints one JSON line per node ({"event":"node",…}), then {"event":"ready"};
 * stops every node on SIGTERM and prints {"event":"stopped","ms":…}.
 */
interface HostSpec {
  dir: string
  /** Index of the first node (names homes and lines). */
  first: number
  count: number
  /** Peers outside this process to join through (the first node here also serves as one for the rest). */
  bootstrap: string[]
  sandbox: 'bubblewrap' | 'none'
  /** Presence heartbeat interval (default: the node's own, 2 s); the timeout is kept at 3.5 intervals as by default. */
  presenceIntervalMs?: number
  /** The mesh definition the cluster's nodes found together (bench/cluster.ts writes it, with their keys). */
  mesh: string
}

const spec = JSON.parse(process.argv[2] ?? '{}') as HostSpec
const executor: Executor = await createExecutor(spec.sandbox)
const nodes: RunningNode[] = []
const say = (event: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(event)}\n`) }

// How late this process's timers fire: the cost of packing many nodes into one event loop.
const lag = monitorEventLoopDelay({ resolution: 20 })
const lagMs = (): Record<string, number> => ({
  p50: Math.round(lag.percentile(50) / 1e6),
  p99: Math.round(lag.percentile(99) / 1e6),
  max: Math.round(lag.max / 1e6)
})

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  lag.disable()
  const eventLoopDelayMs = lagMs()
  const started = performance.now()
  Promise.allSettled(nodes.map(async (n) => { await n.stop() })).then(() => {
    say({ event: 'stopped', ms: Math.round(performance.now() - started), eventLoopDelayMs })
    process.exit(0)
  }, () => { process.exit(1) })
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)

for (let i = 0; i < spec.count && !stopping; i++) {
  const index = spec.first + i
  const bootstrap = [...spec.bootstrap, ...(nodes[0] !== undefined ? [nodes[0].listenAddresses()[0]!] : [])]
  const config = buildNodeConfig({
    home: join(spec.dir, `node-${index}`),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    mdns: false,
    platform: ['linux-x64'],
    slots: '1',
    api: '127.0.0.1:0',
    sandbox: spec.sandbox,
    mesh: spec.mesh
  }, {})
  const node = await startNode(config, {
    executor,
    writeApiFile: false,
    // Dozens of nodes share two cores: the peer answering the bootstrap check may be slow.
    bootstrapTimeoutMs: 120_000,
    ...(spec.presenceIntervalMs !== undefined ? { presence: { intervalMs: spec.presenceIntervalMs, timeoutMs: spec.presenceIntervalMs * 3.5 } } : {}),
    warn: (message) => { process.stderr.write(`node ${index}: ${message}\n`) }
  })
  nodes.push(node)
  process.stderr.write(`node ${index} up after ${Math.round(performance.now())} ms\n`)
  say({ event: 'node', index, peerId: node.peerId.toString(), author: node.author, listen: node.listenAddresses(), api: node.apiUrl, home: node.config.home })
}
say({ event: 'ready', pid: process.pid, nodes: nodes.length })
lag.enable()

// BENCH_COUNTERS: count what each node's gossipsub receives and sends (RPCs, messages per topic,
// IHAVE/IWANT/IDONTWANT ids, GRAFT/PRUNE), its first deliveries, sync sessions, claims and
// yields; on SIGUSR2 print the sums over this host's nodes ({"event":"counters",…}), with the
// monotonic clock in µs (the clock of --cpu-prof profiles, to cut one to a window).
if (process.env.BENCH_COUNTERS !== undefined) {
  const sums: Record<string, number> = {}
  const add = (key: string, n: number): void => { if (n !== 0) sums[key] = (sums[key] ?? 0) + n }
  interface Rpc { messages?: Array<{ topic?: string }>, control?: { ihave?: Array<{ messageIDs?: unknown[] }>, iwant?: Array<{ messageIDs?: unknown[] }>, idontwant?: Array<{ messageIDs?: unknown[] }>, graft?: unknown[], prune?: unknown[] } }
  const tally = (way: string, rpc: Rpc): void => {
    add(`${way}.rpcs`, 1)
    for (const m of rpc.messages ?? []) add(`${way}.msgs.${m.topic ?? '?'}`, 1)
    const c = rpc.control
    if (c === undefined) return
    for (const kind of ['ihave', 'iwant', 'idontwant'] as const) {
      for (const part of c[kind] ?? []) add(`${way}.${kind}Ids`, part.messageIDs?.length ?? 0)
      add(`${way}.${kind}Rpcs`, (c[kind]?.length ?? 0) > 0 ? 1 : 0)
    }
    add(`${way}.graft`, c.graft?.length ?? 0)
    add(`${way}.prune`, c.prune?.length ?? 0)
  }
  for (const node of nodes) {
    const pubsub = node.libp2p.services.pubsub as unknown as { handleReceivedRpc: (from: unknown, rpc: Rpc) => Promise<void>, sendRpc: (id: string, rpc: Rpc) => boolean }
    const received = pubsub.handleReceivedRpc.bind(pubsub)
    pubsub.handleReceivedRpc = async (from, rpc) => { tally('rx', rpc); await received(from, rpc) }
    const send = pubsub.sendRpc.bind(pubsub)
    pubsub.sendRpc = (id, rpc) => { tally('tx', rpc); return send(id, rpc) }
  }
  process.on('SIGUSR2', () => {
    const snapshot: Record<string, number> = { ...sums, hrtimeUs: Number(process.hrtime.bigint() / 1000n) }
    for (const node of nodes) {
      const g = node.gossip.stats()
      const y = node.sync.stats()
      const j = node.jobs.getStats()
      const pubsub = node.libp2p.services.pubsub as unknown as { mesh: Map<string, Set<string>> }
      for (const [key, value] of Object.entries({
        'gossip.accepted': g.accepted, 'gossip.ignored': g.ignored, 'gossip.rejected': g.rejected,
        'sync.sessions': y.sessions, 'sync.failed': y.failed, 'sync.received': y.received, 'sync.sent': y.sent,
        'jobs.claims': j.claims, 'jobs.yielded': j.yielded, 'jobs.diagnoses': j.diagnoses,
        'net.connections': node.libp2p.getConnections().length,
        'net.meshPeers': [...pubsub.mesh.values()].reduce((a, s) => a + s.size, 0)
      })) snapshot[key] = (snapshot[key] ?? 0) + value
    }
    say({ event: 'counters', counters: snapshot })
  })
}
