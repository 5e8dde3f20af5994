import { mkdir } from 'node:fs/promises'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { BlobStore } from '../blobs/store.js'
import { blobExchange, type BlobExchange } from '../blobs/exchange/index.js'
import { authorOfPeerId } from '../crypto/peer-id.js'
import { createSigner } from '../crypto/sign.js'
import { EntryCodec } from '../ledger/entry.js'
import { ENTRIES_TOPIC, entryGossip, FORKS_TOPIC, LedgerStore, ledgerSync, type LedgerSync, type LedgerSyncInit } from '../ledger/index.js'
import { jobEntryRules, JobService, loadTrustDir, type TrustPolicy } from '../jobs/index.js'
import { createExecutor, loadPolicy, SandboxUnavailableError, type AdmissionPolicy, type Executor } from '../sandbox/index.js'
import { blobFetcherOf, membershipOf } from './adapters.js'
import { nodeApiContext } from './api-context.js'
import { createMeshKeeper, type MeshKeeper, type MeshKeeperInit } from '../gossip/keeper.js'
import { KEEPER_SILENT_MS } from '../gossip/constants.js'
import { createMeshLibp2p, type MeshLibp2p } from '../gossip/libp2p.js'
import { createPresence, PRESENCE_TIMEOUT_MS, PRESENCE_TOPIC, type Presence, type PresenceMember } from '../gossip/presence/index.js'
import { describeError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { packageVersion } from '../util/package-root.js'
import { processAlive, readApiFile, removeApiFile, writeApiFile } from './api-file.js'
import { isLoopback } from './api/auth.js'
import { createApiServer } from './api/server.js'
import type { HealthResponse } from './api/types.js'
import type { NodeConfig } from './config.js'
import { NodeAlreadyRunningError } from './errors.js'
import { loadOrCreateIdentity, type NodeIdentity } from './identity.js'
import { ServiceStack } from './services.js'

/** At start, the longest the node waits for its first full sync before planning work. */
export const CATCH_UP_TIMEOUT_MS = 10_000

const log = componentLogger('node:daemon')

/** Members whose announced addresses are remembered to skip re-noting unchanged ones (cleared past this). */
const MAX_ANNOUNCED_PEERS = 4096

/** Knobs for tests and benchmarks; a real node runs with the defaults. */
export interface StartNodeOptions {
  /** Gossip topics accepted besides presence (the ledger's will join them). */
  extraTopics?: string[]
  presence?: { intervalMs?: number, timeoutMs?: number }
  keeper?: Omit<MeshKeeperInit, 'bootstrap'>
  /** How long to wait at start for one bootstrap peer to answer. */
  bootstrapTimeoutMs?: number
  /** Write api.json in the home (default true). */
  writeApiFile?: boolean
  /** How long to ask peers for our own chain before writing to it (default: 5 s with bootstrap peers, 1.5 s with mDNS only, else 0). */
  ownChainTimeoutMs?: number
  /** How long the node syncs with its first peers before it plans work (default CATCH_UP_TIMEOUT_MS). */
  catchUpTimeoutMs?: number
  sync?: LedgerSyncInit
  jobs?: { tickMs?: number, leaseMs?: number }
  /** Use this executor instead of making one for config.sandbox (benchmarks share one). */
  executor?: Executor
  /** Print warnings a volunteer must see (no sandbox, a forked chain); default: stderr. */
  warn?: (message: string) => void
}

/** A started node. `stop()` stops its services in reverse order of start. */
export interface RunningNode {
  readonly config: NodeConfig
  readonly peerId: PeerId
  /** The node key in hex: its name as a log author. */
  readonly author: string
  readonly libp2p: MeshLibp2p
  readonly presence: Presence
  readonly keeper: MeshKeeper
  readonly ledger: LedgerStore
  readonly blobs: BlobStore
  readonly exchange: BlobExchange
  readonly sync: LedgerSync
  readonly jobs: JobService
  /** Undefined when this node cannot build (no sandbox available). */
  readonly executor: Executor | undefined
  readonly policy: AdmissionPolicy
  readonly apiUrl: string
  readonly startedAt: number
  /** Multiaddrs (with /p2p/) others can dial. */
  listenAddresses (): string[]
  stop (): Promise<void>
}

/**
 * Start a node: identity, libp2p, presence, the mesh keeper (and the check
 * that a bootstrap peer answers), the HTTP API, and api.json. Each is a
 * service in one stack: if any fails to start, those already started are
 * stopped in reverse order and the error is thrown; `stop()` unwinds the same
 * way. Later layers (ledger, blobs, jobs) join the stack as more entries.
 */
export async function startNode (config: NodeConfig, options: StartNodeOptions = {}): Promise<RunningNode> {
  const startedAt = Date.now()
  const identity = await loadOrCreateIdentity(config.home)
  await refuseIfAlreadyRunning(identity)

  const stack = new ServiceStack()
  const warn = options.warn ?? ((message: string) => { process.stderr.write(`${message}\n`) })
  try {
    // The log first: LevelDB's OS lock makes a second node on this home fail here, touching nothing.
    const ledger = await LedgerStore.open({ path: identity.paths.ledger, codec: new EntryCodec(jobEntryRules), signer: createSigner(identity.key) })
    stack.add('ledger', { start: async () => {}, stop: async () => { await ledger.close() } })
    const blobs = await BlobStore.open({ dir: identity.paths.blobs, maxBytes: config.blobCacheMb * 1024 * 1024 })
    await mkdir(identity.paths.work, { recursive: true, mode: 0o700 })

    const policy = await loadPolicy(identity.paths.policy)
    const executor = options.executor ?? await makeExecutor(config, warn)
    const trust = await trustPolicyOf(config)

    const libp2p = await createMeshLibp2p({
      privateKey: identity.privateKey,
      listen: config.listen,
      mdns: config.mdns,
      // Gossipsub tracks no topic outside this list; each layer that gossips adds its topic here.
      topics: [PRESENCE_TOPIC, ENTRIES_TOPIC, FORKS_TOPIC, ...(options.extraTopics ?? [])]
    })
    stack.add('libp2p', { start: async () => { await libp2p.start() }, stop: async () => { await libp2p.stop() } })
    await stack.start('entry gossip', entryGossip({ pubsub: libp2p.services.pubsub, store: ledger }))
    const sync = await stack.start('sync', ledgerSync({ network: libp2p, store: ledger }, options.sync))
    const exchange = await stack.start('blob exchange', blobExchange({ network: libp2p, store: blobs }))

    const version = packageVersion()
    const slots = executor === undefined ? 0 : config.slots
    const presence = await stack.start('presence', createPresence(
      { pubsub: libp2p.services.pubsub, peerId: identity.peerId, addresses: () => libp2p.getMultiaddrs() },
      {
        platforms: config.platforms,
        slots,
        accepts: { network: policy.network, root: policy.root },
        version,
        ...(options.presence ?? {})
      }
    ))

    const keeper = await stack.start('keeper', createMeshKeeper(libp2p, { bootstrap: config.bootstrap, ...(options.keeper ?? {}) }))
    // Every heartbeat refreshes where a member listens, so the keeper can find it again after a partition,
    // and so protocols that dial by peer id (blob fetches) reach a member this node has no connection to.
    const announced = new Map<string, string>()
    const onHeartbeat = (event: CustomEvent<PresenceMember>): void => {
      const peerId = peerIdFromString(event.detail.peerId)
      const addrs = event.detail.heartbeat.addrs ?? []
      // Tolerate as much more silence as presence does for a member with a longer interval.
      keeper.heard(peerId, addrs, KEEPER_SILENT_MS + presence.silenceAllowedFor(event.detail) - PRESENCE_TIMEOUT_MS)
      const text = addrs.join(' ')
      if (addrs.length === 0 || announced.get(event.detail.peerId) === text) return
      if (announced.size >= MAX_ANNOUNCED_PEERS) announced.clear()
      announced.set(event.detail.peerId, text)
      const multiaddrs = addrs.flatMap((address) => { try { return [multiaddr(address)] } catch { return [] } })
      libp2p.peerStore.merge(peerId, { multiaddrs }).catch((err: unknown) => { log('could not note the addresses of %p: %s', peerId, describeError(err)) })
    }
    const onDiscovery = (event: CustomEvent<PeerInfo>): void => { keeper.discovered(event.detail.id) }
    stack.add('mesh wiring', {
      start: async () => {},
      stop: async () => {
        presence.removeEventListener('heartbeat', onHeartbeat)
        libp2p.removeEventListener('peer:discovery', onDiscovery)
      }
    })
    presence.addEventListener('heartbeat', onHeartbeat)
    libp2p.addEventListener('peer:discovery', onDiscovery)
    await keeper.connectBootstrap(options.bootstrapTimeoutMs)

    // Learn the mesh's view of our own chain before writing to it: a home
    // restored from an older copy must continue its chain, not fork it.
    const ownChainTimeoutMs = options.ownChainTimeoutMs ?? (config.bootstrap.length > 0 ? 5_000 : config.mdns ? 1_500 : 0)
    if (ownChainTimeoutMs > 0) {
      const learnt = await sync.learnOwnChain({ timeoutMs: ownChainTimeoutMs })
      if (learnt.adopted > 0) warn(`note: this node's chain was ${learnt.adopted} entries behind the mesh (an older copy of its home?); it continues from seq ${learnt.head?.seq ?? 0}.`)
    }
    if (ledger.selfForked) {
      warn('WARNING: another copy of this node\'s key wrote a conflicting entry (two machines with one home?); this node will not write to the log. Give each machine its own home.')
    } else {
      ledger.allowAppend()
    }
    // Catch up with the peers we have before planning any work: a node that has
    // a job but not yet its results would claim it again. Bounded: a long
    // history keeps arriving after the jobs start.
    if (ownChainTimeoutMs > 0) await sync.catchUp({ timeoutMs: options.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS })

    const jobs = new JobService({
      self: { author: identity.author, platforms: config.platforms, slots },
      ledger,
      blobs,
      fetcher: blobFetcherOf(exchange, () => libp2p.getPeers()),
      membership: membershipOf(presence),
      executor,
      policy,
      trust,
      workRoot: identity.paths.work,
      ...(options.jobs?.tickMs !== undefined ? { tickMs: options.jobs.tickMs } : {}),
      ...(options.jobs?.leaseMs !== undefined ? { leaseMs: options.jobs.leaseMs } : {})
    })
    await stack.start('jobs', jobs)
    // A key caught forking is no longer believed: refold every view without it.
    const excludeForked = (): void => { jobs.setTrustPolicy({ ...trust, excluded: new Set([...(trust.excluded ?? []), ...ledger.equivocatingAuthors()]) }) }
    if (ledger.equivocatingAuthors().length > 0) excludeForked()
    ledger.addEventListener('fork', excludeForked)
    stack.add('fork watch', { start: async () => {}, stop: async () => { ledger.removeEventListener('fork', excludeForked) } })

    const api = await stack.start('api', createApiServer(nodeApiContext({
      identity,
      version,
      startedAt,
      presence,
      libp2p,
      ledger,
      blobs,
      exchange,
      sync,
      jobs,
      addressesOf: async (peerId) => await addressesOf(libp2p, peerId, presence),
      // A build that shares the host's network could reach the API on loopback: then loopback is no proof of anything.
      trustLoopback: !policy.network && executor?.kind !== 'none'
    }), config.api))
    const advertised = advertisedApi(config.api.host, api.url)
    if (advertised !== undefined) presence.update({ api: advertised })

    if (options.writeApiFile !== false) {
      const apiFile = identity.paths.apiFile
      await stack.start('api.json', {
        start: async () => { await writeApiFile(apiFile, { url: api.url, pid: process.pid, peerId: identity.peerId.toString(), startedAt }) },
        stop: async () => { await removeApiFile(apiFile) }
      })
    }

    log('node %p started: %s', identity.peerId, stack.names.join(', '))
    let stopping: Promise<void> | undefined
    return {
      config,
      peerId: identity.peerId,
      author: identity.author,
      libp2p,
      presence,
      keeper,
      ledger,
      blobs,
      exchange,
      sync,
      jobs,
      executor,
      policy,
      apiUrl: api.url,
      startedAt,
      listenAddresses: () => libp2p.getMultiaddrs().map(String),
      stop: async () => {
        stopping ??= stack.stopAll()
        await stopping
      }
    }
  } catch (err) {
    await stack.stopAll().catch((stopErr: unknown) => { log.error('unwinding a failed start: %s', describeError(stopErr)) })
    throw err
  }
}

/** The executor for config.sandbox; undefined (the node joins but does not build) when it is unavailable. */
async function makeExecutor (config: NodeConfig, warn: (message: string) => void): Promise<Executor | undefined> {
  if (config.slots === 0) return undefined
  try {
    return await createExecutor(config.sandbox)
  } catch (err) {
    if (!(err instanceof SandboxUnavailableError)) throw err
    warn(`this node will not build: ${err.message}`)
    return undefined
  }
}

/** Whom the node's own view believes: --trust (a key directory) and --quorum. */
async function trustPolicyOf (config: NodeConfig): Promise<TrustPolicy> {
  const policy: TrustPolicy = {}
  if (config.trust !== undefined) policy.trusted = (await loadTrustDir(config.trust)).keys
  if (config.quorum !== undefined) policy.quorum = config.quorum
  return policy
}

/**
 * api.json is not a lock (a crash leaves it behind), but if the node it names
 * is alive and answers as this very identity, a second one must not start.
 */
async function refuseIfAlreadyRunning (identity: NodeIdentity): Promise<void> {
  const found = await readApiFile(identity.paths.apiFile)
  if (found.state !== 'ok' || !processAlive(found.info.pid)) return
  try {
    const response = await fetch(new URL('/api/health', found.info.url), { signal: AbortSignal.timeout(1_000) })
    const health = await response.json() as Partial<HealthResponse>
    if (health.peerId !== identity.peerId.toString()) return
  } catch {
    return
  }
  throw new NodeAlreadyRunningError(`a node is already running in ${identity.paths.root} (pid ${found.info.pid}, API ${found.info.url}); stop it first, or give this one another --home`)
}

async function addressesOf (libp2p: MeshLibp2p, peerIdText: string, presence: Presence): Promise<string[]> {
  const peerId = peerIdFromString(peerIdText)
  // What it announces in its heartbeats, then what identify told us, then where we dialed it.
  const addresses: string[] = [...(presence.member(authorOfPeerId(peerId))?.heartbeat.addrs ?? [])]
  try {
    // What it listens on, as identify reported it: the addresses worth dialing.
    const peer = await libp2p.peerStore.get(peerId)
    for (const { multiaddr } of peer.addresses) addresses.push(multiaddr.toString())
  } catch {
    // Heard through gossip only: nothing in the address book.
  }
  // An inbound connection's remote address is an ephemeral port: only outbound ones say where it listens.
  for (const connection of libp2p.getConnections(peerId)) {
    if (connection.direction === 'outbound') addresses.push(connection.remoteAddr.decapsulateCode(421).toString())
  }
  return [...new Set(addresses)]
}

/** Tell the mesh our API URL only when other machines can use it: bound to a specific, non-loopback address. */
function advertisedApi (host: string, url: string): string | undefined {
  if (host === '0.0.0.0' || host === '::' || host === 'localhost' || isLoopback(host)) return undefined
  return url
}
