import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey } from '../src/crypto/keys.js'
import { createSigner } from '../src/crypto/sign.js'
import { MAX_HEARTBEAT_INTERVAL_MS, HEARTBEAT_INTERVAL_MS, HEARTBEATS_PER_SECOND, MEMBERS_PER_BASE_INTERVAL } from '../src/gossip/presence/constants.js'
import { encodeHeartbeat } from '../src/gossip/presence/heartbeat.js'
import { jobBodyFromSpec, jobEntryRules, validateJobSpec, type ResultBody } from '../src/jobs/index.js'
import { rendezvousScore } from '../src/jobs/rendezvous.js'
import { EntryCodec, type DecodedEntry } from '../src/ledger/entry.js'
import { LedgerStore } from '../src/ledger/index.js'
import { MAX_HEADS_PER_FRAME, SUMMARY_BUCKETS, SUMMARY_BUCKETS_FROM_CHAINS, SYNC_INTERVAL_MS, SYNC_PEERS_PER_ROUND } from '../src/ledger/sync/constants.js'
import { decodeFrame, encodeFrame, type HeadTriple } from '../src/ledger/sync/frames.js'
import { summarize } from '../src/ledger/sync/summary.js'
import { buildNodeConfig } from '../src/node/config.js'
import { startNode, type RunningNode } from '../src/node/daemon.js'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { waitFor } from '../src/util/wait.js'
import { round } from './stats.js'

/**
 * The inputs of docs/SCALING.md's model, measured, and the model run from
 * them. Costs are CPU time (process.cpuUsage), not wall time, so a busy
 * machine disturbs them much less than it does latencies.
 *
 * Measured on K full nodes in this process (startNode; no builds, so no
 * sandbox): an idle node's base cost (no heartbeats, no sync rounds), the
 * CPU per heartbeat delivery, per anti-entropy session, and per gossiped
 * entry delivery (all of a delivery: the gossip copies a node receives and
 * forwards, signature checks, storing, folding); the sizes of heartbeats and
 * of real job, claim and result entries on the wire and in LevelDB; a fresh
 * store's catch-up rate (verify + store, both cores). The model then gives,
 * per node, for a mesh of N nodes: heartbeats heard, presence and job gossip
 * CPU and traffic, log growth a day at a PyPI-like load, and the time a new
 * volunteer needs to catch up after a year.
 */
export interface BenchScaleOptions {
  /** Nodes of the in-process meshes (default 8: 7 peers each, more than gossipsub's mesh degree). */
  nodes?: number
  /** How long each idle measure lasts (default 15 s). */
  idleMs?: number
  /** Entries gossiped for the per-entry cost (default 200). */
  entries?: number
  /** Entries for the sizes on disk and the catch-up rate (default 20,000). */
  storeEntries?: number
}

/** A PyPI-like load: uploads a day, each built on `platforms` platforms by `replicas` builders. */
export const PYPI_LIKE = { uploadsPerDay: 20_000, platforms: 3, replicas: 2 }
/** How long a build holds its slot, on average, for the number of slots open at once (a PyPI-like wheel build). */
const MEAN_BUILD_S = 300
/**
 * Copies of each gossip message a node receives (and, on average, sends):
 * measured at 50 nodes with our mesh degree (GOSSIP_MESH, D 4 within 3–6),
 * 1,115 copies for 248 first deliveries per job (BENCHMARKS.md, "Mesh cost
 * at 50 nodes"). It was 6, gossipsub's default D, until that was measured.
 */
const GOSSIP_COPIES = 4.5
/** Bytes a gossipsub message adds around its data (from, seqno, topic, signature, key, protobuf) plus Yamux and Noise framing. */
const GOSSIP_ENVELOPE_BYTES = 190

/** Sync 1.1.0, both ways, when the heads agree: the two digest frames and the ends (bench/sync-heads: 202 B). */
const SYNC_DIGESTS_BYTES = 202
/** The listener's bucket digests when the heads differ: 256 × 64 hex digits in JSON (bench/sync-heads: ~18 KB). */
const SYNC_BUCKET_DIGESTS_BYTES = 256 * 67 + 40
/** Chains two nodes are apart at a session, for the bound (every session finds them apart): a few in-flight entries. */
const SYNC_CHAINS_APART = 2
/** Cores a new volunteer's machine gives the catch-up (verify in worker threads, parse and store on the main one). */
const CATCH_UP_CORES = 2
/** The link a new volunteer catches up over, for the transfer time (100 Mbit/s). */
const CATCH_UP_LINK_BYTES_PER_S = 12.5e6

interface Costs {
  nodes: number
  /** CPU of an idle node with neither heartbeats nor sync rounds (gossipsub upkeep, pings, timers). */
  baseCoresPerNode: number
  /** CPU per heartbeat a node hears, all of it (copies in and out, checks, bookkeeping). */
  cpuMsPerHeartbeat: number
  /** CPU per anti-entropy session end (each session costs both sides one). */
  cpuMsPerSyncSession: number
  /** CPU per gossiped entry a node receives and stores (copies, two signature checks, LevelDB, fold, plan). */
  cpuMsPerEntry: number
  /** CPU per author head in a sync session's heads exchange (encode, decode, compare: both sides), on top of cpuMsPerSyncSession. */
  cpuMsPerSyncHead: number
  /** CPU per author head a sync 1.1.0 session spends on its digests (both sides hash every head they hold). */
  cpuMsPerDigestHead: number
  /** Wire bytes per author head in a heads frame. */
  syncHeadBytes: number
  /** CPU of one rendezvous score (a plan ranks each open slot's candidate members). */
  cpuMsPerRendezvousScore: number
  raw: Record<string, unknown>
}

function config (home: string, bootstrap: string[], meshFile: string): ReturnType<typeof buildNodeConfig> {
  return buildNodeConfig({ home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, platform: ['linux-x64'], slots: '0', api: '127.0.0.1:0', mesh: meshFile }, {})
}

async function mesh (scratch: string, name: string, count: number, options: { presenceMs: number, syncMs: number }): Promise<RunningNode[]> {
  const nodes: RunningNode[] = []
  // The nodes found their own mesh (as a real mesh's members, not strangers on the shipped one).
  const meshFile = join(scratch, `${name}-mesh.json`)
  await foundMeshFor(Array.from({ length: count }, (_, i) => join(scratch, `${name}-${i}`)), meshFile, { name: `bench-scale-${name}` })
  try {
    for (let i = 0; i < count; i++) {
      // Every earlier node as a bootstrap peer: a node dials only addresses it has been given or has seen proven.
      nodes.push(await startNode(config(join(scratch, `${name}-${i}`), nodes.map((n) => n.listenAddresses()[0]!), meshFile), {
        writeApiFile: false,
        warn: () => {},
        bootstrapTimeoutMs: 60_000,
        presence: { intervalMs: options.presenceMs, timeoutMs: options.presenceMs * 3.5 },
        sync: { intervalMs: options.syncMs }
      }))
    }
    // Every pair connected, whatever presence does, so that each measure runs on the same topology.
    for (let i = 1; i < count; i++) {
      // Retried: libp2p refuses more than a few new connections a second from one host.
      for (let j = 0; j < i; j++) {
        const target = multiaddr(nodes[j]!.listenAddresses()[0]!)
        await waitFor(async () => await nodes[i]!.libp2p.dial(target).then(() => true, () => false), { timeoutMs: 30_000, intervalMs: 500, what: `node ${i} to reach node ${j}` })
      }
    }
    await waitFor(() => nodes.every((n) => n.libp2p.getPeers().length >= count - 1), { timeoutMs: 120_000, intervalMs: 50, what: `${count} nodes to connect` })
    if (options.presenceMs <= 10_000) await waitFor(() => nodes.every((n) => n.presence.size === count - 1), { timeoutMs: 120_000, intervalMs: 50, what: `${count} nodes to hear each other` })
    // Let start-up work (first syncs, identify, mesh grafting) settle.
    await new Promise((resolve) => setTimeout(resolve, 5_000))
    return nodes
  } catch (err) {
    await Promise.allSettled(nodes.map(async (n) => { await n.stop() }))
    throw err
  }
}

async function cpuOver (ms: number): Promise<{ cpuS: number, wallS: number }> {
  const before = process.cpuUsage()
  const started = performance.now()
  await new Promise((resolve) => setTimeout(resolve, ms))
  const used = process.cpuUsage(before)
  return { cpuS: (used.user + used.system) / 1e6, wallS: (performance.now() - started) / 1000 }
}

async function measureCosts (scratch: string, count: number, idleMs: number, entries: number): Promise<Costs> {
  const stopAll = async (nodes: RunningNode[]): Promise<void> => { await Promise.allSettled(nodes.map(async (n) => { await n.stop() })) }
  const quiet = 600_000

  progress(`base: ${count} nodes, no heartbeats, no sync rounds`)
  let nodes = await mesh(scratch, 'base', count, { presenceMs: quiet, syncMs: quiet })
  const base = await cpuOver(idleMs)
  await stopAll(nodes)
  const baseCores = base.cpuS / base.wallS / count

  progress(`sync rounds every 2 s, no heartbeats`)
  nodes = await mesh(scratch, 'sync', count, { presenceMs: quiet, syncMs: 2_000 })
  const sessionsBefore = nodes.reduce((n, node) => n + node.sync.stats().sessions, 0)
  const sync = await cpuOver(idleMs)
  const sessions = nodes.reduce((n, node) => n + node.sync.stats().sessions, 0) - sessionsBefore
  await stopAll(nodes)

  progress(`heartbeats every 2 s, no sync rounds; then ${entries} gossiped entries`)
  nodes = await mesh(scratch, 'hb', count, { presenceMs: HEARTBEAT_INTERVAL_MS, syncMs: quiet })
  const heartbeats = await cpuOver(idleMs)
  const heard = count * (count - 1) / (HEARTBEAT_INTERVAL_MS / 1000) * heartbeats.wallS
  let delivered = 0
  const author = nodes[0]!.author
  const onEntry = (evt: Event): void => { if ((evt as CustomEvent<DecodedEntry>).detail.entry.author === author) delivered++ }
  for (const node of nodes.slice(1)) node.ledger.addEventListener('entry', onEntry)
  const before = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < entries; i++) {
    await nodes[0]!.ledger.append('claim', { job: 'f'.repeat(64), platform: 'linux-x64', lease: i })
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await waitFor(() => delivered >= entries * (count - 1), { timeoutMs: 120_000, intervalMs: 20, what: 'every gossiped entry to be stored everywhere' })
  const used = process.cpuUsage(before)
  const entryWallS = (performance.now() - started) / 1000
  await stopAll(nodes)

  // The heads exchange, alone: what a session adds per author held (both sides encode, decode and compare).
  const heads: HeadTriple[] = Array.from({ length: MAX_HEADS_PER_FRAME }, (_, i) => [i.toString(16).padStart(64, '0'), i, (i * 7).toString(16).padStart(64, 'a')])
  const mine = new Map(heads.map(([author, seq, id]) => [author, { seq, id }]))
  const frameBytes = encodeFrame({ t: 'heads', heads, more: false }).byteLength
  const headsBefore = process.cpuUsage()
  for (let round = 0; round < 10; round++) {
    const frame = decodeFrame(encodeFrame({ t: 'heads', heads: [...mine].map(([author, h]) => [author, h.seq, h.id]), more: false }))
    if (frame.t !== 'heads') throw new Error('not a heads frame')
    let behind = 0
    for (const [author, seq] of frame.heads) if ((mine.get(author)?.seq ?? -1) < seq) behind++
    if (behind !== 0) throw new Error('heads differ')
  }
  const headsCpu = process.cpuUsage(headsBefore)
  const digestBefore = process.cpuUsage()
  for (let round = 0; round < 10; round++) summarize(heads, [])
  const digestCpu = process.cpuUsage(digestBefore)
  const scoreBefore = process.cpuUsage()
  for (let i = 0; i < 50_000; i++) rendezvousScore('ab'.repeat(32), 'linux-x64', heads[i % heads.length]![0])
  const scoreCpu = process.cpuUsage(scoreBefore)
  const hbCores = heartbeats.cpuS / heartbeats.wallS
  const entryCpuS = (used.user + used.system) / 1e6 - hbCores * entryWallS
  return {
    nodes: count,
    baseCoresPerNode: round(baseCores, 5),
    cpuMsPerHeartbeat: round((heartbeats.cpuS - baseCores * count * heartbeats.wallS) * 1000 / heard, 3),
    cpuMsPerSyncSession: round((sync.cpuS - baseCores * count * sync.wallS) * 1000 / Math.max(1, sessions), 3),
    cpuMsPerEntry: round(entryCpuS * 1000 / Math.max(1, delivered), 3),
    // Each side of a session does one encode, one decode and one comparison: twice what one loop round does.
    cpuMsPerSyncHead: round(2 * (headsCpu.user + headsCpu.system) / 1000 / (10 * heads.length), 5),
    syncHeadBytes: round(frameBytes / heads.length, 1),
    cpuMsPerDigestHead: round(2 * (digestCpu.user + digestCpu.system) / 1000 / (10 * heads.length), 5),
    cpuMsPerRendezvousScore: round((scoreCpu.user + scoreCpu.system) / 1000 / 50_000, 5),
    raw: {
      base,
      sync: { ...sync, sessionEnds: sessions },
      heartbeats: { ...heartbeats, heard: Math.round(heard) },
      entries: { delivered, wallS: round(entryWallS, 2), cpuS: round((used.user + used.system) / 1e6, 2) }
    }
  }
}

interface Sizes {
  heartbeatBytes: number
  /** Wire bytes of one gossip copy of a heartbeat, envelope and framing included. */
  heartbeatWireBytes: number
  jobLineBytes: number
  claimLineBytes: number
  resultLineBytes: number
  /** Mean wire line per entry at the PyPI-like mix (1 job : P·R claims : P·R results). */
  meanEntryLineBytes: number
  /** LevelDB directory bytes per entry at that mix (line, id, type and ref indexes, after compaction). */
  diskBytesPerEntry: number
  /** Entries a fresh store verifies and stores a second (all cores), from export lines: wall time, disturbed by a busy machine. */
  catchUpEntriesPerS: number
  /** CPU (all threads) per entry of that catch-up: what the model uses, with every core of a 2-core machine. */
  catchUpCpuMsPerEntry: number
}

async function dirBytes (dir: string): Promise<number> {
  let total = 0
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size
  return total
}

async function measureSizes (scratch: string, storeEntries: number): Promise<Sizes> {
  progress(`sizes: entries, heartbeats; ${storeEntries} entries into LevelDB; catch-up rate`)
  const heartbeat = encodeHeartbeat({
    v: 1, platforms: ['linux-x64', 'debian-12'], slots: 4, free: 3, running: [`${'a'.repeat(64)}/linux-x64`], accepts: { network: false, root: false },
    version: '0.1.0', addrs: ['/ip4/203.0.113.7/tcp/4710', '/ip6/2001:db8::7/tcp/4710'], every: 20_000, time: Date.now()
  })
  const codec = new EntryCodec(jobEntryRules)
  const signer = createSigner(generateNodeKey())
  const spec = validateJobSpec({
    name: 'requests-2.32.3', platforms: ['linux-x64', 'linux-arm64', 'darwin-arm64'], replicas: 2,
    steps: [{ name: 'build', run: 'python -m build --wheel --outdir dist .' }, { name: 'test', run: 'python -m pytest -q' }],
    artifacts: ['dist/*.whl'], timeout: 900
  })
  const job = codec.create(signer, { seq: 0, prev: null, clock: 0, time: Date.now(), type: 'job', body: jobBodyFromSpec(spec, {}, { hash: 'ab'.repeat(32), size: 1_234_567 }) })
  const claim = codec.create(signer, { seq: 1, prev: job.id, clock: 1, time: Date.now(), type: 'claim', body: { job: job.id, platform: 'linux-x64', lease: Date.now() + 15_000 } })
  const resultBody: ResultBody = {
    job: job.id, platform: 'linux-x64', status: 'pass',
    steps: [{ name: 'build', exit: 0, ms: 41_233 }, { name: 'test', exit: 0, ms: 18_904 }],
    log: 'cd'.repeat(32), logSize: 48_211,
    artifacts: [{ path: 'dist/requests-2.32.3-py3-none-any.whl', sha256: 'ef'.repeat(32), size: 64_928 }],
    env: { os: 'linux', kernel: '6.1.0-28-amd64', arch: 'x64', sandbox: 'bubblewrap 0.8.0', tools: { python3: 'Python 3.11.2', limits: 'cgroup-v2' } },
    start: Date.now() - 60_000, end: Date.now()
  }
  const result = codec.create(signer, { seq: 2, prev: claim.id, clock: 2, time: Date.now(), type: 'result', body: resultBody })
  const perUpload = PYPI_LIKE.platforms * PYPI_LIKE.replicas
  const bytes = (e: DecodedEntry): number => Buffer.byteLength(e.line)
  const mean = (bytes(job) + perUpload * (bytes(claim) + bytes(result))) / (1 + 2 * perUpload)

  // A store holding the mix: one writer's chain (what an author's history looks like on disk).
  const path = join(scratch, 'sizes-ledger')
  const writer = await LedgerStore.open({ path, codec, signer: createSigner(generateNodeKey()) })
  writer.allowAppend()
  const lines: string[] = []
  const batch = 256
  for (let made = 0; made < storeEntries;) {
    const appends: Array<Promise<DecodedEntry>> = []
    for (let i = 0; i < batch && made < storeEntries; i++, made++) {
      const slot = made % (1 + 2 * perUpload)
      if (slot === 0) appends.push(writer.append('job', job.entry.body))
      else if (slot <= perUpload) appends.push(writer.append('claim', { ...claim.entry.body, lease: made }))
      else appends.push(writer.append('result', { ...resultBody, start: made }))
    }
    for (const entry of await Promise.all(appends)) lines.push(entry.line)
  }
  await writer.close()
  const diskBytes = await dirBytes(path)

  // Catch-up: a fresh store ingests the lines (decode, verify on the worker pool, store), as sync does.
  const fresh = await LedgerStore.open({ path: join(scratch, 'sizes-fresh'), codec })
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  for (let i = 0; i < lines.length; i += 512) await fresh.ingest(lines.slice(i, i + 512))
  const cpu = process.cpuUsage(cpuBefore)
  const catchUpS = (performance.now() - started) / 1000
  await fresh.close()
  return {
    heartbeatBytes: heartbeat.byteLength,
    heartbeatWireBytes: heartbeat.byteLength + GOSSIP_ENVELOPE_BYTES,
    jobLineBytes: bytes(job),
    claimLineBytes: bytes(claim),
    resultLineBytes: bytes(result),
    meanEntryLineBytes: Math.round(mean),
    diskBytesPerEntry: Math.round(diskBytes / storeEntries),
    catchUpEntriesPerS: Math.round(lines.length / catchUpS),
    catchUpCpuMsPerEntry: round((cpu.user + cpu.system) / 1000 / lines.length, 4)
  }
}

/** Heartbeats a node hears a second in a mesh of `members` (the rule in src/gossip/presence). */
export function heartbeatsHeardPerSecond (members: number): number {
  const intervalMs = members <= MEMBERS_PER_BASE_INTERVAL
    ? HEARTBEAT_INTERVAL_MS
    : Math.max(HEARTBEAT_INTERVAL_MS, Math.min(MAX_HEARTBEAT_INTERVAL_MS, members * 1000 / HEARTBEATS_PER_SECOND))
  return (members - 1) / (intervalMs / 1000)
}

export interface Projection {
  nodes: number
  heartbeatsHeardPerS: number
  /** CPU of one idle node: base + heartbeats + sync rounds. */
  idleCoresPerNode: number
  presenceCores: number
  syncCores: number
  presenceKBps: number
  /**
   * Anti-entropy (both directions) with sync 1.1.0, bounded as if every
   * session found the heads a few chains apart: the digests, the
   * listener's bucket digests, and the heads of the differing buckets.
   */
  syncKBps: number
  /** The same with sync 1.0.0 (every head, both ways): grows with the authors held, one per node. */
  syncKBpsEveryHead: number
  /** At the PyPI-like load: entries a node receives a second, their CPU and traffic. */
  jobEntriesPerS: number
  jobCores: number
  jobKBps: number
  /** Slots open (waiting or building) at once at that load. */
  openSlots: number
  /** Upper bound of the claim planning a node does: a plan per entry, ranking every open slot's members by rendezvous. */
  planCoresUpperBound: number
  /** Core-seconds the whole mesh spends per job of `replicas` on one platform (each node stores its 1 + 2·replicas entries), idle excluded. */
  meshCoreSecondsPerJob: number
  logMBPerDay: number
  logGBPerYear: number
  catchUpHoursAfterYear: { cpu: number, transfer: number }
}

/**
 * The model. Per node: heartbeats heard (the presence rule) × cost each; sync
 * rounds (SYNC_PEERS_PER_ROUND dialled and as many answered per interval,
 * each a session's fixed cost plus its heads exchange, one head per author:
 * every node is an author); job entries (every node stores every entry:
 * full replication) × cost each. Traffic: each gossip message arrives and
 * leaves about GOSSIP_COPIES times; heads travel both ways.
 */
export function project (costs: Costs, sizes: Sizes, nodes: number, replicas = 2): Projection {
  const hb = heartbeatsHeardPerSecond(nodes)
  const presenceCores = hb * costs.cpuMsPerHeartbeat / 1000
  // Each node dials SYNC_PEERS_PER_ROUND a round and answers as many: one session end each, whose heads exchange lists every author held.
  const sessionsPerS = 2 * Math.min(SYNC_PEERS_PER_ROUND, nodes - 1) / (SYNC_INTERVAL_MS / 1000)
  // Sync 1.1.0: every head is digested on both sides; the heads of the differing buckets travel (every head below 256 chains).
  const bucketed = nodes >= SUMMARY_BUCKETS_FROM_CHAINS
  const headsApart = bucketed ? 2 * SYNC_CHAINS_APART * Math.ceil(nodes / SUMMARY_BUCKETS) : 2 * nodes
  const syncCores = sessionsPerS * (costs.cpuMsPerSyncSession + Math.max(0, nodes - costs.nodes) * costs.cpuMsPerDigestHead + headsApart * costs.cpuMsPerSyncHead / 2) / 1000
  const syncBytesPerSession = SYNC_DIGESTS_BYTES + (bucketed ? SYNC_BUCKET_DIGESTS_BYTES : 0) + headsApart * costs.syncHeadBytes
  const entriesPerUpload = 1 + 2 * PYPI_LIKE.platforms * PYPI_LIKE.replicas
  const entriesPerDay = PYPI_LIKE.uploadsPerDay * entriesPerUpload
  const entriesPerS = entriesPerDay / 86_400
  const copies = Math.min(GOSSIP_COPIES, nodes - 1)
  const openSlots = PYPI_LIKE.uploadsPerDay * PYPI_LIKE.platforms / 86_400 * MEAN_BUILD_S
  const yearEntries = entriesPerDay * 365
  return {
    nodes,
    heartbeatsHeardPerS: round(hb, 2),
    idleCoresPerNode: round(costs.baseCoresPerNode + presenceCores + syncCores, 4),
    presenceCores: round(presenceCores, 4),
    syncCores: round(syncCores, 4),
    presenceKBps: round(hb * sizes.heartbeatWireBytes * copies * 2 / 1000, 1),
    syncKBps: round(sessionsPerS * syncBytesPerSession / 1000, 1),
    syncKBpsEveryHead: round(sessionsPerS * nodes * costs.syncHeadBytes * 2 / 1000, 1),
    jobEntriesPerS: round(entriesPerS, 2),
    jobCores: round(entriesPerS * costs.cpuMsPerEntry / 1000, 4),
    jobKBps: round(entriesPerS * (sizes.meanEntryLineBytes + GOSSIP_ENVELOPE_BYTES) * copies * 2 / 1000, 1),
    openSlots: Math.round(openSlots),
    planCoresUpperBound: round(entriesPerS * openSlots * nodes * costs.cpuMsPerRendezvousScore / 1000, 4),
    meshCoreSecondsPerJob: round(nodes * (1 + 2 * replicas) * costs.cpuMsPerEntry / 1000, 3),
    logMBPerDay: round(entriesPerDay * sizes.diskBytesPerEntry / 1e6, 0),
    logGBPerYear: round(yearEntries * sizes.diskBytesPerEntry / 1e9, 0),
    catchUpHoursAfterYear: {
      cpu: round(yearEntries * sizes.catchUpCpuMsPerEntry / 1000 / CATCH_UP_CORES / 3600, 1),
      transfer: round(yearEntries * sizes.meanEntryLineBytes / CATCH_UP_LINK_BYTES_PER_S / 3600, 1)
    }
  }
}

export const MODEL_SIZES = [3, 10, 30, 50, 100, 300, 1_000, 10_000]

export async function benchScale (options: BenchScaleOptions = {}): Promise<Record<string, unknown>> {
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-scale-'))
  try {
    const costs = await measureCosts(scratch, options.nodes ?? 8, options.idleMs ?? 15_000, options.entries ?? 200)
    const sizes = await measureSizes(scratch, options.storeEntries ?? 20_000)
    return {
      what: 'per-message CPU costs (CPU time, in-process meshes of full nodes without builds) and sizes, and the scale model of docs/SCALING.md run from them',
      cpus: availableParallelism(),
      costs,
      sizes,
      load: { ...PYPI_LIKE, entriesPerUpload: 1 + 2 * PYPI_LIKE.platforms * PYPI_LIKE.replicas },
      assumptions: {
        gossipCopies: GOSSIP_COPIES,
        gossipEnvelopeBytes: GOSSIP_ENVELOPE_BYTES,
        catchUpLinkMBps: CATCH_UP_LINK_BYTES_PER_S / 1e6,
        catchUpCores: CATCH_UP_CORES,
        syncPeersPerRound: SYNC_PEERS_PER_ROUND,
        syncIntervalMs: SYNC_INTERVAL_MS,
        meanBuildS: MEAN_BUILD_S,
        note: 'full replication (every node stores every entry); per-delivery costs measured at K nodes are taken as constant per delivery at any size (gossipsub keeps ~D mesh peers); sync 1.1.0: every head digested on both sides, the differing buckets exchanged (bounded as if every session found 2 chains apart); syncKBpsEveryHead is sync 1.0.0, whose heads grow with the authors'
      },
      model: MODEL_SIZES.map((n) => project(costs, sizes, n))
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}

/**
 * The model beside the cluster module's measured figures of the same run
 * (idle CPU per node; the mesh's CPU per job over the jobs phase, which
 * includes the idle cost of that phase): run.ts adds this when both ran.
 */
export function checkModel (scale: Record<string, unknown>, cluster: Record<string, unknown>): Record<string, unknown> {
  const costs = scale.costs as Costs
  const sizes = scale.sizes as Sizes
  const rows: Array<Record<string, unknown>> = []
  for (const run of [cluster.baselineRun, cluster.run] as Array<Record<string, number> | undefined>) {
    if (run === undefined || !Number.isFinite(run.idleCoresPerNode)) continue
    const p = project(costs, sizes, run.nodes!)
    const jobsS = run.convergenceMs! / 1000
    const predictedCpuPerJob = (p.idleCoresPerNode * run.nodes! * jobsS) / run.jobs! + p.meshCoreSecondsPerJob
    rows.push({
      nodes: run.nodes,
      idleCoresPerNode: { model: p.idleCoresPerNode, measured: run.idleCoresPerNode, ratio: round(run.idleCoresPerNode! / p.idleCoresPerNode, 2) },
      cpuSecondsPerJob: { model: round(predictedCpuPerJob, 2), measured: round(run.cpuSeconds! / run.jobs!, 2), ratio: round(run.cpuSeconds! / run.jobs! / predictedCpuPerJob, 2) }
    })
  }
  return { rows, note: 'model: idle = base + heartbeats + sync per node; CPU per job = idle × nodes × the jobs phase ÷ jobs + nodes × 5 entries × cost per entry (sandbox runs and HTTP not modelled)' }
}

function progress (what: string): void {
  if (process.env.BENCH_QUIET === undefined) process.stderr.write(`bench/scale: ${what}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchScale(), null, 2))
  process.exit(0)
}
