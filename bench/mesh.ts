import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Message } from '@libp2p/gossipsub'
import { createMeshLibp2p, type MeshLibp2p } from '../src/gossip/libp2p.js'
import { buildNodeConfig } from '../src/node/config.js'
import { startNode, type RunningNode } from '../src/node/daemon.js'
import { initIdentity } from '../src/node/home/identity.js'
import { delay, waitFor } from '../src/util/wait.js'
import { median, percentile, round } from './stats.js'

/**
 * Figures for the node layer, each beside raw libp2p gossipsub (the same
 * createMeshLibp2p stack without buildhaus's services) measured in the same
 * run: start time (process and in-process), time for N nodes to see each
 * other, gossip delivery latency from one publisher to all, idle RSS.
 */
export interface BenchMeshOptions {
  /** Mesh sizes for formation and delivery. */
  sizes?: number[]
  /** Messages published per delivery measurement. */
  messages?: number
  /** Process-start repetitions (median reported). */
  startRuns?: number
  /** Idle processes of each kind for RSS. */
  rssProcesses?: number
  /** How long the RSS processes idle before they are measured. */
  idleMs?: number
}

const BENCH_TOPIC = 'buildhaus/bench/1'
const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../..' : '..', import.meta.url))
const BIN = join(ROOT, 'bin', 'buildhaus-node.js')
const RAW = join(ROOT, 'dist', 'bench', 'raw-node.js')

interface Figure {
  buildhaus: number
  raw: number
  /** buildhaus ÷ raw. */
  ratio: number
}

function figure (buildhaus: number, raw: number): Figure {
  return { buildhaus: round(buildhaus), raw: round(raw), ratio: round(buildhaus / raw, 2) }
}

export async function benchMesh (options: BenchMeshOptions = {}): Promise<Record<string, unknown>> {
  const sizes = options.sizes ?? [10, 30]
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-'))
  try {
    progress('process start')
    const processStartMs = await benchProcessStart(scratch, options.startRuns ?? 3)
    const inProcessStartMs = await benchInProcessStart(scratch, 5)
    const meshes: Record<string, unknown> = {}
    for (const size of sizes) {
      progress(`mesh of ${size}`)
      try {
        meshes[String(size)] = await benchMeshOf(scratch, size, options.messages ?? 30)
      } catch (err) {
        // One process hosting many nodes can run out of CPU; report it rather than lose the other figures.
        meshes[String(size)] = { nodes: size, error: err instanceof Error ? err.message : String(err) }
      }
    }
    progress('idle RSS')
    const rssMbPerIdleNode = await benchRss(scratch, options.rssProcesses ?? 3, options.idleMs ?? 10_000)
    return {
      bench: 'mesh',
      node: process.version,
      cpus: (await import('node:os')).availableParallelism(),
      note: 'buildhaus = startNode/`join` (key file, presence every 2 s, keeper, API); raw = createMeshLibp2p alone; same machine, same run',
      processStartMs,
      inProcessStartMs,
      meshes,
      rssMbPerIdleNode
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

/** Process spawn → ready line, median of `runs`, on a home made beforehand (a restart, the usual case). */
async function benchProcessStart (scratch: string, runs: number): Promise<Figure> {
  const home = join(scratch, 'process-start')
  await initIdentity(home)
  const buildhaus: number[] = []
  const raw: number[] = []
  for (let i = 0; i < runs; i++) {
    const b = await spawnReady(process.execPath, [BIN, 'join', '--json', '--home', home, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0'])
    buildhaus.push(b.ms)
    await stopChild(b.child)
    const r = await spawnReady(process.execPath, [RAW, '/ip4/127.0.0.1/tcp/0'])
    raw.push(r.ms)
    await stopChild(r.child)
  }
  return figure(median(buildhaus), median(raw))
}

const quiet = (): void => {}

/** startNode (with its key file, API and services) vs createMeshLibp2p, in this process. */
async function benchInProcessStart (scratch: string, runs: number): Promise<Figure> {
  const buildhaus: number[] = []
  const raw: number[] = []
  for (let i = 0; i < runs; i++) {
    const started = performance.now()
    const node = await startNode(configFor(join(scratch, `start-${i}`)), { warn: quiet })
    buildhaus.push(performance.now() - started)
    await node.stop()
    const rawStarted = performance.now()
    const bare = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    raw.push(performance.now() - rawStarted)
    await bare.stop()
  }
  return figure(median(buildhaus), median(raw))
}

/**
 * These nodes join the project's public mesh, as a volunteer's node does by
 * default: they build nothing here, so membership changes nothing measured
 * (the note that the public mesh has no founders yet is silenced).
 */
function configFor (home: string, bootstrap: string[] = []): ReturnType<typeof buildNodeConfig> {
  return buildNodeConfig({ home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, platform: ['linux-x64'], slots: '1', api: '127.0.0.1:0' }, {})
}

/**
 * N nodes, each joining through the first. Formation: first start → every node
 * has heard every other. buildhaus: presence membership. raw: each node
 * publishes a hello at start and every heartbeat interval buildhaus uses at this size (what presence
 * does, without validation, membership or the rest). Then delivery latency of
 * `messages` publishes from the last node to all others.
 */
async function benchMeshOf (scratch: string, size: number, messages: number): Promise<Record<string, unknown>> {
  // buildhaus
  const nodes: RunningNode[] = []
  let formationBuildhaus: number
  let deliveryBuildhaus: Latencies
  let peersBuildhaus: number
  // The raw nodes say hello as often as buildhaus's presence does at this size (its interval grows past 20 members).
  let helloEveryMs: number
  try {
    const started = performance.now()
    nodes.push(await startNode(configFor(join(scratch, `mesh-${size}-0`)), { extraTopics: [BENCH_TOPIC], warn: quiet }))
    const bootstrap = nodes[0]!.listenAddresses()[0]!
    // Dozens of nodes share this one event loop, so the first node may answer slowly: be patient at start.
    for (let i = 1; i < size; i++) nodes.push(await startNode(configFor(join(scratch, `mesh-${size}-${i}`), [bootstrap]), { extraTopics: [BENCH_TOPIC], bootstrapTimeoutMs: 60_000, warn: quiet }))
    await waitFor(() => nodes.every((n) => n.presence.size === size - 1), { timeoutMs: 60_000 + size * 2_000, intervalMs: 20, what: `${size} buildhaus nodes to see each other` })
    formationBuildhaus = performance.now() - started
    deliveryBuildhaus = await measureDelivery(nodes.map((n) => n.libp2p), messages)
    peersBuildhaus = meanPeers(nodes.map((n) => n.libp2p))
    helloEveryMs = nodes[0]!.presence.intervalFor(size)
  } finally {
    await Promise.all(nodes.map(async (n) => { await n.stop() }))
  }

  // raw gossipsub
  const bare: MeshLibp2p[] = []
  const timers: Array<ReturnType<typeof setInterval>> = []
  let formationRaw: number
  let deliveryRaw: Latencies
  let peersRaw: number
  try {
    const heard = new Map<string, Set<string>>()
    const started = performance.now()
    for (let i = 0; i < size; i++) {
      const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
      bare.push(node)
      const set = new Set<string>()
      heard.set(node.peerId.toString(), set)
      node.services.pubsub.addEventListener('message', (event: CustomEvent<Message>) => {
        if (event.detail.topic === 'raw/hello' && event.detail.type === 'signed') set.add(event.detail.from.toString())
      })
      node.services.pubsub.subscribe('raw/hello')
      node.services.pubsub.subscribe(BENCH_TOPIC)
      // The same connectivity the keeper gives buildhaus nodes: the first node, then up to 7 others
      // (a gossipsub star loses messages: spokes pruned from the hub's mesh only get some by gossip).
      const targets = i === 0 ? [] : [bare[0]!, ...shuffle(bare.slice(1, i)).slice(0, 7)]
      for (const target of targets) {
        // Retried as the keeper does: libp2p refuses more than a few new connections a second from one host.
        await waitFor(async () => await node.dial(target.getMultiaddrs()[0]!).then(() => true), { timeoutMs: 10_000, intervalMs: 500, what: 'a raw node to reach another' })
      }
      const hello = (): void => { node.services.pubsub.publish('raw/hello', new TextEncoder().encode('hello')).catch(() => {}) }
      hello()
      timers.push(setInterval(hello, helloEveryMs))
    }
    await waitFor(() => [...heard.values()].every((s) => s.size === size - 1), { timeoutMs: 60_000 + size * 2_000, intervalMs: 20, what: `${size} raw nodes to hear each other` })
    formationRaw = performance.now() - started
    deliveryRaw = await measureDelivery(bare, messages)
    peersRaw = meanPeers(bare)
  } finally {
    timers.forEach((t) => { clearInterval(t) })
    await Promise.all(bare.map(async (n) => { await n.stop() }))
  }

  return {
    nodes: size,
    formationMs: figure(formationBuildhaus, formationRaw),
    deliveryP50Ms: figure(deliveryBuildhaus.p50, deliveryRaw.p50),
    deliveryP99Ms: figure(deliveryBuildhaus.p99, deliveryRaw.p99),
    delivered: { buildhaus: `${deliveryBuildhaus.samples}/${deliveryBuildhaus.expected}`, raw: `${deliveryRaw.samples}/${deliveryRaw.expected}` },
    helloIntervalMs: helloEveryMs,
    meanPeersPerNode: { buildhaus: round(peersBuildhaus, 1), raw: round(peersRaw, 1), why: 'buildhaus: the first node, then the keeper dials members until a node has 8 peers; raw: the first node and 7 random others' }
  }
}

interface Latencies { p50: number, p99: number, samples: number, expected: number }

/** The last node publishes `count` messages on the bench topic; every other node records arrival delay. */
async function measureDelivery (nodes: MeshLibp2p[], count: number): Promise<Latencies> {
  const publisher = nodes.at(-1)!
  const receivers = nodes.slice(0, -1)
  const latencies: number[] = []
  const warm = new Set<string>()
  for (const node of nodes) node.services.pubsub.subscribe(BENCH_TOPIC)
  const listeners = receivers.map((node) => {
    const listener = (event: CustomEvent<Message>): void => {
      if (event.detail.topic !== BENCH_TOPIC) return
      const text = new TextDecoder().decode(event.detail.data)
      if (text.startsWith('warm')) warm.add(`${node.peerId.toString()} ${text}`)
      else latencies.push(performance.timeOrigin + performance.now() - Number(text))
    }
    node.services.pubsub.addEventListener('message', listener)
    return { node, listener }
  })
  try {
    // Warm up until one message reaches everyone: the gossip mesh on the bench topic has formed.
    let round = 0
    await waitFor(async () => {
      const tag = `warm-${round++}`
      await publisher.services.pubsub.publish(BENCH_TOPIC, new TextEncoder().encode(tag)).catch(() => {})
      await delay(300)
      return receivers.every((n) => warm.has(`${n.peerId.toString()} ${tag}`))
    }, { timeoutMs: 60_000, intervalMs: 0, what: 'the bench topic to reach every node' })
    for (let i = 0; i < count; i++) {
      await publisher.services.pubsub.publish(BENCH_TOPIC, new TextEncoder().encode(String(performance.timeOrigin + performance.now())))
      await delay(50)
    }
    const expected = count * receivers.length
    await waitFor(() => latencies.length >= expected, { timeoutMs: 20_000, what: 'every bench message to arrive' }).catch(() => {})
  } finally {
    listeners.forEach(({ node, listener }) => { node.services.pubsub.removeEventListener('message', listener) })
  }
  latencies.sort((a, b) => a - b)
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), samples: latencies.length, expected: count * receivers.length }
}

function meanPeers (nodes: MeshLibp2p[]): number {
  return nodes.reduce((sum, n) => sum + new Set(n.getConnections().map((c) => c.remotePeer.toString())).size, 0) / nodes.length
}

/** Idle processes joined into one small mesh; VmRSS after `idleMs`. */
async function benchRss (scratch: string, count: number, idleMs: number): Promise<Figure> {
  const buildhaus: ChildProcess[] = []
  const raw: ChildProcess[] = []
  try {
    let first: string | undefined
    for (let i = 0; i < count; i++) {
      const args = [BIN, 'join', '--json', '--home', join(scratch, `rss-${i}`), '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', ...(first !== undefined ? ['--bootstrap', first] : [])]
      const started = await spawnReady(process.execPath, args)
      buildhaus.push(started.child)
      first ??= started.ready.listen[0]
    }
    let rawFirst: string | undefined
    for (let i = 0; i < count; i++) {
      const started = await spawnReady(process.execPath, [RAW, '/ip4/127.0.0.1/tcp/0', ...(rawFirst !== undefined ? [rawFirst] : [])])
      raw.push(started.child)
      rawFirst ??= started.ready.listen[0]
    }
    await delay(idleMs)
    const rss = async (children: ChildProcess[]): Promise<number> => {
      const values = await Promise.all(children.map(async (c) => await rssMb(c.pid!)))
      return values.reduce((a, b) => a + b, 0) / values.length
    }
    return figure(await rss(buildhaus), await rss(raw))
  } finally {
    await Promise.all([...buildhaus, ...raw].map(stopChild))
  }
}

async function rssMb (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN)
  return kb / 1024
}

interface ReadyLine { listen: string[] }

async function spawnReady (command: string, args: string[]): Promise<{ child: ChildProcess, ms: number, ready: ReadyLine }> {
  const started = performance.now()
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const ready = await new Promise<ReadyLine>((resolve, reject) => {
    let pending = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk
      const line = pending.split('\n').find((l) => l.includes('"event":"ready"'))
      if (line !== undefined) resolve(JSON.parse(line) as ReadyLine)
    })
    child.once('exit', (code) => { reject(new Error(`${args[0] ?? command} exited with ${String(code)} before it was ready: ${stderr.trim()}`)) })
  })
  return { child, ms: performance.now() - started, ready }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

function progress (what: string): void {
  if (process.env.BENCH_QUIET === undefined) process.stderr.write(`bench/mesh: ${what}\n`)
}

function shuffle<T> (items: T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const sizes = process.env.BENCH_SIZES?.split(',').map(Number)
  console.log(JSON.stringify(await benchMesh(sizes !== undefined ? { sizes } : {}), null, 2))
  process.exit(0)
}
