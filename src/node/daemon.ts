import { setMaxListeners } from 'node:events'
import { mkdir } from 'node:fs/promises'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { BlobStore } from '../blobs/store.js'
import { blobExchange, type BlobExchange } from '../blobs/exchange/index.js'
import { authorOfPeerId } from '../crypto/peer-id.js'
import { createSigner } from '../crypto/sign.js'
import { EntryCodec } from '../ledger/entry.js'
import {
  Admission, ENTRIES_TOPIC, entryGossip, FORKS_TOPIC, LedgerStore, ledgerSync, type AdmissionInit, type EntryGossip, type LedgerSync,
  type LedgerSyncInit, type StandingFn
} from '../ledger/index.js'
import { jobEntryRules, JobService, loadTrustDir, type TrustPolicy } from '../jobs/index.js'
import { MeshMembership } from '../membership/index.js'
import { clearWorkspaces, createExecutor, loadPolicy, measureHost, SandboxUnavailableError, type AdmissionPolicy, type Executor } from '../sandbox/index.js'
import { EnvironmentStore } from '../environments/index.js'
import { blobFetcherOf, membershipOf } from './adapters.js'
import { nodeApiContext } from './api/context.js'
import { createAddressBook, withDialGate } from '../gossip/address-book.js'
import { createIntroductions, type IntroductionsInit } from '../gossip/introductions/index.js'
import { createMeshKeeper, type MeshKeeper, type MeshKeeperInit } from '../gossip/keeper.js'
import { KEEPER_SILENT_MS } from '../gossip/constants.js'
import { createMeshLibp2p, type MeshLibp2p } from '../gossip/libp2p.js'
import {
  boundPublicAddresses, boundPublicHosts, isCircuit, isPublicAddress, meshGater, reachabilityOf, reachTracker, readSwarmKeyFile, servesRelay, withoutRelayDials, withoutRelayedProtocolDials,
  type ClosedMesh, type MeshGater, type NatOptions, type Reachability, type ReachTracker
} from '../gossip/nat/index.js'
import { createPresence, PRESENCE_TIMEOUT_MS, PRESENCE_TOPIC, type Presence, type PresenceMember } from '../gossip/presence/index.js'
import { describeError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { packageVersion } from '../util/package-root.js'
import { processAlive, readApiFile, removeApiFile, writeApiFile } from './api/file.js'
import { isLoopback } from './api/auth.js'
import { createApiServer } from './api/server.js'
import type { HealthResponse } from './api/types.js'
import { MAX_EVENT_CLIENTS } from './api/routes/events.js'
import type { NodeConfig } from './config.js'
import { NodeAlreadyRunningError } from './errors.js'
import { loadOrCreateIdentity, type NodeIdentity } from './home/identity.js'
import { loadMesh, noFoundersNotice, trustModeOf, type LoadedMesh, type TrustMode } from './home/mesh.js'
import { networkStatus, reachOfPeer } from './api/network-status.js'
import { LiveLogHub, LiveLogService, liveKey, type LiveLogInit } from '../livelog/index.js'
import { peerIdOfAuthor } from '../crypto/peer-id.js'
import { ClockWatch, LiveLogRelay, NodeEnvironments, ReleasePins, ServiceStack, Watcher, WebhookNotifier, type WebhookSender } from './services/index.js'
import { AddressPolicy } from '../upstream/index.js'

/** At start, the longest the node waits for its first full sync before planning work. */
export const CATCH_UP_TIMEOUT_MS = 10_000

const log = componentLogger('node:daemon')

/** Knobs for tests and benchmarks; a real node runs with the defaults. */
export interface StartNodeOptions {
  /** Gossip topics accepted besides presence (the ledger's will join them). */
  extraTopics?: string[]
  /** Presence's bounds and, for tests, its clock (a node whose clock runs fast). */
  presence?: { intervalMs?: number, timeoutMs?: number, maxMembers?: number, maxStrangers?: number, now?: () => number }
  keeper?: Omit<MeshKeeperInit, 'bootstrap' | 'book' | 'wantPeers'>
  introductions?: IntroductionsInit
  /**
   * Whether an author key is a member of the mesh, for the gossip layer
   * (introducers, members' announced addresses, who is evicted first from
   * bounded tables). Default: the mesh's membership (src/membership).
   */
  isMember?: (author: string) => boolean
  /** How long to wait at start for one bootstrap peer to answer. */
  bootstrapTimeoutMs?: number
  /** Write api.json in the home (default true). */
  writeApiFile?: boolean
  /** How long to ask peers for our own chain before writing to it (default: 5 s with bootstrap peers, 1.5 s with mDNS only, else 0). */
  ownChainTimeoutMs?: number
  /** How long the node syncs with its first peers before it plans work (default CATCH_UP_TIMEOUT_MS). */
  catchUpTimeoutMs?: number
  sync?: LedgerSyncInit
  /**
   * Who the ledger's quotas and the job index count as a member (larger
   * quotas and index share than strangers). Default: the mesh's members
   * (src/membership), and the keys of a `--trust DIR` list.
   */
  standing?: StandingFn
  /** Quota overrides for tests and benchmarks (a real node runs with src/ledger/admission/constants.ts). */
  quotas?: AdmissionInit['quotas']
  jobs?: { tickMs?: number, leaseMs?: number }
  /** Use this executor instead of making one for config.sandbox (benchmarks share one). */
  executor?: Executor
  /** Deliver webhooks with this sender (tests shorten its back-off). */
  webhookSender?: WebhookSender
  /** Bounds of live log follows (tests lower them). */
  liveLog?: LiveLogInit
  /** Print warnings a volunteer must see (no sandbox, a forked chain); default: stderr. */
  warn?: (message: string) => void
  /** How often the node compares its clock with its peers' (default CLOCK_CHECK_MS; tests shorten it). */
  clockCheckMs?: number
  /** Where progress of environments being made goes (default: as warnings, to stderr). */
  environmentProgress?: (line: string) => void
  /**
   * A closed mesh: the connection gater refuses every peer for which
   * `isMember(authorHex)` is false (its configured bootstrap peers excepted),
   * and closes connections to peers that stop being members. Default: the
   * mesh's own membership when its definition says `closed: true`, else an
   * open mesh (anyone may connect).
   */
  closedMesh?: ClosedMesh
  /** Override parts of NAT traversal (tests). */
  nat?: Partial<NatOptions>
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
  /** The ledger's quotas, shared by gossip and sync. */
  readonly admission: Admission
  readonly gossip: EntryGossip
  readonly blobs: BlobStore
  readonly exchange: BlobExchange
  readonly sync: LedgerSync
  readonly jobs: JobService
  readonly liveLogs: LiveLogService
  /** The artifacts this node keeps pinned as releases. */
  readonly releasePins: ReleasePins
  /** Undefined when this node cannot build (no sandbox available). */
  readonly executor: Executor | undefined
  /** The environments it offers; undefined when it offers none. */
  readonly environments: NodeEnvironments | undefined
  readonly policy: AdmissionPolicy
  /** The mesh this node belongs to: its definition, and the file it came from. */
  readonly mesh: LoadedMesh
  /**
   * Who is a member of the mesh now, from the vouches in the log. For the
   * connection gater and the ledger's quotas: `membership.isMember(authorHex)`
   * and `membership.standing(authorHex)` (a peer id and an author key are the
   * same Ed25519 key, see src/crypto/peer-id.ts).
   */
  readonly membership: MeshMembership
  /** Whom the node counts: the mesh's members (default), everyone, or its trust list. */
  readonly trustMode: TrustMode
  /** The connection gater (closed-mesh admission, relay bounds). */
  readonly gater: MeshGater
  /** How each peer is reached (direct, relayed, hole-punched). */
  readonly reach: ReachTracker
  /** How others can reach this node now. */
  reachability (): Reachability
  readonly apiUrl: string
  /** The dashboard with this node's API token in its fragment (never sent to a server): `join` prints it for the user to open. */
  readonly dashboardLink: string
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
  const warn = options.warn ?? ((message: string) => { process.stderr.write(`${message}\n`) })
  // A bad swarm key is a usage error: found before the home is touched.
  const swarmKey = config.swarmKey !== undefined ? await readSwarmKeyFile(config.swarmKey, warn) : undefined
  const identity = await loadOrCreateIdentity(config.home)
  await refuseIfAlreadyRunning(identity)

  const stack = new ServiceStack()
  try {
    // The log first: LevelDB's OS lock makes a second node on this home fail here, touching nothing.
    const ledger = await LedgerStore.open({ path: identity.paths.ledger, codec: new EntryCodec(jobEntryRules), signer: createSigner(identity.key) })
    stack.add('ledger', { start: async () => {}, stop: async () => { await ledger.close() } })
    const blobs = await BlobStore.open({ dir: identity.paths.blobs, maxBytes: config.blobCacheMb * 1024 * 1024 })
    await mkdir(identity.paths.work, { recursive: true, mode: 0o700 })
    // What runs left behind (a crash, a kill, a removal that failed) goes before anything runs again.
    await clearWorkspaces(identity.paths.work).catch((err: unknown) => { warn(`WARNING: could not clear old workspaces in ${identity.paths.work}: ${describeError(err)}`) })

    // Maximums the volunteer did not set are capped by what this host has, shared between its slots.
    const policy = await loadPolicy(identity.paths.policy, await measureHost(identity.paths.work, config.slots))
    const mesh = await loadMesh(config.mesh, config.home)
    const trustMode = trustModeOf(config.trust)
    const executor = options.executor ?? await makeExecutor(config, warn)
    // An executor made here is this node's: its spare workspaces and cgroups go when the node stops (after the job service).
    if (options.executor === undefined && executor?.close !== undefined) stack.add('sandbox', { start: async () => {}, stop: async () => { await executor.close?.() } })
    const trust = await trustPolicyOf(config)
    // Who is a member, from the log's vouches: ready before the network starts, so that a
    // connection gater or the ledger's quotas can ask from the first peer on.
    const membership = await stack.start('membership', new MeshMembership({ definition: mesh.definition, ledger }))
    // Whom the ledger's quotas and the job index count as one of us: the mesh's members now (asked at each
    // entry, so a vouch takes effect at once), and the keys of the reader's own trust list (--trust DIR).
    // --trust everyone changes whose verdicts count, not the quotas: a flood of fresh keys stays bounded.
    const listed = trustMode === 'list' ? trust.trusted ?? new Set<string>() : new Set<string>()
    const standing: StandingFn = options.standing ?? ((author) => membership.isMember(author) || listed.has(author) ? 'member' : 'stranger')

    // Members' heartbeat addresses are dialable and members keep their places in the presence table.
    const isMember = options.isMember ?? ((author: string) => options.closedMesh?.isMember(author) ?? membership.isMember(author))
    // Every dial of this node passes the book's gate: only addresses seen on real connections, introduced by a trusted peer, or configured.
    const book = createAddressBook({ bootstrap: config.bootstrap, discovery: config.mdns, isMember })
    // A node listening on a public address needs no relay; any other reserves a slot on one (an announced
    // address is the operator's claim, not a proof that its port is forwarded: the reservation is cheap insurance).
    const boundPublic = boundPublicHosts(config.listen).length > 0
    const publicAtStart = boundPublic || config.announce.some((a) => isPublicAddress(a))
    let reachable: () => Reachability = () => publicAtStart ? 'public' : 'private'
    const relayServing = (): boolean => servesRelay(config.relay, reachable())
    // A closed mesh (its definition says `closed: true`) admits only members at the connection level.
    const closedMesh: ClosedMesh | undefined = options.closedMesh ?? (mesh.definition.closed === true ? { isMember: (author) => membership.isMember(author) } : undefined)
    const gater = meshGater({
      ...(closedMesh !== undefined ? { closedMesh } : {}),
      alwaysAllow: config.bootstrap.map(bootstrapPeerId),
      relayServing
    })
    const libp2p = await createMeshLibp2p({
      privateKey: identity.privateKey,
      listen: config.listen,
      mdns: config.mdns,
      // Gossipsub tracks no topic outside this list; each layer that gossips adds its topic here.
      topics: [PRESENCE_TOPIC, ENTRIES_TOPIC, FORKS_TOPIC, ...(options.extraTopics ?? [])],
      nat: { relay: config.relay, reserve: !boundPublic, upnp: config.upnp, ...(options.nat ?? {}) },
      // A public address bound on an interface is announced as it is: libp2p would wait for AutoNAT to confirm it.
      announce: [...new Set([...config.announce, ...boundPublicAddresses(config.listen)])],
      ...(swarmKey !== undefined ? { swarmKey } : {}),
      gater: withDialGate(gater, book)
    })
    reachable = () => reachabilityOf(libp2p.getMultiaddrs(), publicAtStart)
    gater.attach({
      getConnections: (peer) => libp2p.getConnections(peer),
      reservations: () => [...(libp2p.services.relay?.reservations.entries() ?? [])].map(([peer, r]) => ({ peer, addr: r.addr }))
    })
    stack.add('libp2p', { start: async () => { await libp2p.start() }, stop: async () => { await libp2p.stop() } })
    book.start(libp2p)
    stack.add('address book', { start: () => {}, stop: () => { book.stop() } })
    await stack.start('gater', gater)
    // A key that stops being a member (unvouched, revoked, forked) loses its connections to a closed mesh at once.
    if (closedMesh !== undefined) {
      const offSweep = membership.on('change', () => { gater.sweep() })
      stack.add('gater sweep on membership', { start: async () => {}, stop: async () => { offSweep() } })
    }
    const reach = await stack.start('reach', reachTracker(libp2p))
    const introductions = await stack.start('introductions', createIntroductions({ network: libp2p, book }, options.introductions))
    // One set of quotas for both ways in: an entry costs the same by gossip or by sync.
    const admission = new Admission({
      self: identity.author,
      standing,
      ...(options.quotas !== undefined ? { quotas: options.quotas } : {})
    })
    const gossip = await stack.start('entry gossip', entryGossip({ pubsub: libp2p.services.pubsub, store: ledger, admission }))
    // The log syncs over direct connections only: a relay's bytes are kept for blobs.
    const syncNetwork = {
      peerId: libp2p.peerId,
      handle: libp2p.handle.bind(libp2p),
      unhandle: libp2p.unhandle.bind(libp2p),
      dialProtocol: withoutRelayedProtocolDials(libp2p),
      getConnections: () => libp2p.getConnections(),
      addEventListener: libp2p.addEventListener.bind(libp2p),
      removeEventListener: libp2p.removeEventListener.bind(libp2p)
    }
    const sync = await stack.start('sync', ledgerSync({ network: syncNetwork, store: ledger, admission }, options.sync))
    const exchange = await stack.start('blob exchange', blobExchange({ network: libp2p, store: blobs }))
    const liveHub = new LiveLogHub()
    const liveLogs = await stack.start('live logs', new LiveLogService({ network: libp2p, hub: liveHub, self: identity.author }, options.liveLog))

    const version = packageVersion()
    const slots = executor === undefined ? 0 : config.slots
    const presence = await stack.start('presence', createPresence(
      { pubsub: libp2p.services.pubsub, peerId: identity.peerId, addresses: () => libp2p.getMultiaddrs() },
      {
        platforms: config.platforms,
        slots,
        accepts: { network: policy.network, root: policy.root },
        polls: config.polls,
        version,
        isMember,
        ...(options.presence ?? {})
      }
    ))

    // Told when its clock is far from its peers': past MAX_FUTURE_MS they would refuse its entries, silently.
    const clockWatch = await stack.start('clock watch', new ClockWatch({ members: () => presence.members(), isMember, warn }, options.clockCheckMs))

    // Environments are made in the background: the node joins at once and advertises each when it is ready.
    let environments: NodeEnvironments | undefined
    if (config.environments.length > 0 && executor !== undefined) {
      const store = await EnvironmentStore.open({ dir: config.environmentDir, maxBytes: config.environmentCacheMb * 1024 * 1024 })
      environments = await stack.start('environments', new NodeEnvironments({
        store,
        offered: config.environments,
        onReady: (names) => { presence.update({ environments: names }) },
        say: options.environmentProgress ?? warn
      }))
    }

    // The keeper never opens relayed connections (nat), and dials members only where the address book saw them.
    const keeper = await stack.start('keeper', createMeshKeeper(withoutRelayDials(libp2p), {
      bootstrap: config.bootstrap,
      book,
      wantPeers: () => { introductions.ask() },
      ...(options.keeper ?? {})
    }))
    // A heartbeat says a member is alive; where it listens, the keeper takes only from the address book
    // (a member's announced addresses reach the book through heard(); a stranger's are dropped).
    const onHeartbeat = (event: CustomEvent<PresenceMember>): void => {
      const peerId = peerIdFromString(event.detail.peerId)
      // Tolerate as much more silence as presence does for a member with a longer interval.
      keeper.heard(peerId, event.detail.heartbeat.addrs ?? [], KEEPER_SILENT_MS + presence.silenceAllowedFor(event.detail) - PRESENCE_TIMEOUT_MS)
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

    // Whom the node believes now: the members (they change with vouches), minus keys caught forking.
    const policyNow = (): TrustPolicy => ({
      ...trust,
      ...(trustMode === 'members' ? { trusted: membership.members() } : {}),
      excluded: new Set([...(trust.excluded ?? []), ...ledger.equivocatingAuthors()])
    })
    // One way to fetch a blob for builds and for the API alike: its holders first, dialed where the address book allows.
    const fetcher = blobFetcherOf(exchange, () => libp2p.getPeers(), async (peer) => {
      // Where the book allows dialing it, and its relayed addresses (nat): a relayed dial goes only through a relay the gate
      // lets us reach, never to an address of the heartbeat's choosing. Noted only for authors of a fetch, so no flood of
      // heartbeats fills libp2p's peer store.
      const relayed = (presence.member(authorOfPeerId(peer))?.heartbeat.addrs ?? []).filter((a) => { try { return isCircuit(a) } catch { return false } })
      const multiaddrs = [...book.dialable(peer), ...relayed.map((a) => multiaddr(a.includes('/p2p-circuit/p2p/') ? a : `${a}/p2p/${peer.toString()}`))]
      if (multiaddrs.length > 0) await libp2p.peerStore.merge(peer, { multiaddrs })
    })
    const jobs = new JobService({
      self: { author: identity.author, platforms: config.platforms, slots },
      ledger,
      blobs,
      fetcher,
      membership: membershipOf(presence),
      executor,
      ...(environments !== undefined ? { environments } : {}),
      policy,
      trust: policyNow(),
      workRoot: identity.paths.work,
      standing,
      sign: createSigner(identity.key).sign,
      ...(options.jobs?.tickMs !== undefined ? { tickMs: options.jobs.tickMs } : {}),
      ...(options.jobs?.leaseMs !== undefined ? { leaseMs: options.jobs.leaseMs } : {})
    })
    // 'job' has one listener per event stream the API serves (at most MAX_EVENT_CLIENTS) besides the node's own
    // (API, live logs, pins, watches, webhooks): Node's warning past 10 would be a false alarm.
    setMaxListeners(MAX_EVENT_CLIENTS + 16, jobs)
    const refold = (): void => { jobs.setTrustPolicy(policyNow()) }
    ledger.addEventListener('fork', refold)
    const offMembers = membership.on('change', refold)
    stack.add('trust watch', { start: async () => {}, stop: async () => { ledger.removeEventListener('fork', refold); offMembers() } })
    // This node's own runs go to the live log hub as they print.
    const offRun = jobs.on('run', (event) => {
      const key = liveKey(event.detail.job, event.detail.platform, identity.author)
      if (event.detail.running) liveHub.open(key)
      else liveHub.end(key)
    })
    const offLog = jobs.on('log', (event) => { liveHub.append(liveKey(event.detail.job, event.detail.platform, identity.author), event.detail.text) })
    stack.add('live log wiring', { start: async () => {}, stop: async () => { offRun(); offLog() } })
    await stack.start('jobs', jobs)
    const releasePins = await stack.start('release pins', new ReleasePins({ self: identity.author, retentionMs: config.retentionDays * 24 * 60 * 60_000, blobs, jobs }))
    await stack.start('webhooks', new WebhookNotifier({
      file: identity.paths.webhooks,
      self: identity.author,
      jobs,
      isMine: (view) => view.submitter === identity.author || (view.spec.trigger !== undefined && jobs.watches.get(view.spec.trigger.watch)?.author === identity.author),
      ...(options.webhookSender !== undefined ? { sender: options.webhookSender } : {})
    }))
    const addressPolicy = new AddressPolicy(config.watchAllow)
    const presenceMembers = membershipOf(presence)
    const watcher = new Watcher({
      self: identity.author,
      jobs,
      ledger,
      blobs,
      members: () => [...presenceMembers.members(), { author: identity.author, platforms: config.platforms, slots, free: 0, running: [], accepts: { network: policy.network, root: policy.root }, lastSeen: Date.now(), ...(config.polls ? { polls: true } : {}) }],
      policy: addressPolicy,
      workRoot: identity.paths.work,
      minIntervalS: config.watchMinIntervalS
    })
    if (config.polls) await stack.start('watcher', watcher)
    const live = stack.add('live log relay', new LiveLogRelayService(new LiveLogRelay({
      hub: liveHub,
      service: liveLogs,
      self: identity.author,
      jobs,
      peerIdOf: peerIdOfAuthor
    })))

    const api = await stack.start('api', createApiServer(nodeApiContext({
      identity,
      version,
      startedAt,
      presence,
      libp2p,
      ledger,
      admission,
      gossip,
      blobs,
      fetcher,
      sync,
      jobs,
      mesh,
      membership,
      trustMode,
      addressesOf: async (peerId) => await addressesOf(libp2p, peerId, presence),
      reachOf: (peerId) => reachOfPeer(reach, peerId),
      network: () => networkStatus({ libp2p, gater, reach, exchange, config, reachability: () => reachable(), relayServing }),
      clockSkew: () => clockWatch.skew(),
      live: live.relay,
      watches: watcher.api()
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

    // Stopped first (the stack stops in reverse): the peers are told this node is leaving while the
    // rest of the shutdown runs, so the message is read before the connections close.
    stack.add('presence leave', { start: () => {}, stop: () => { presence.leave() } })

    // Said once the node is up (a start that fails says one sentence, its error).
    if (trustMode === 'members' && mesh.definition.founders.length === 0) warn(`note: ${noFoundersNotice(mesh)}`)
    if (trustMode === 'everyone') warn('WARNING: --trust everyone: every key\'s claims and results count, so two throwaway keys can forge a verdict; use it only on a network where you know every machine.')
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
      admission,
      gossip,
      blobs,
      exchange,
      sync,
      jobs,
      liveLogs,
      releasePins,
      executor,
      environments,
      policy,
      mesh,
      membership,
      trustMode,
      gater,
      reach,
      reachability: () => reachable(),
      apiUrl: api.url,
      dashboardLink: `${api.url}/#token=${identity.apiToken}`,
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

/** The peer id a bootstrap multiaddr names (checked by the config already). */
function bootstrapPeerId (address: string): string {
  return multiaddr(address).getComponents().findLast((c) => c.name === 'p2p')?.value ?? ''
}

/** The relay as a service of the stack: stopping it ends every follow. */
class LiveLogRelayService {
  constructor (readonly relay: LiveLogRelay) {}
  start (): void {}
  stop (): void { this.relay.stop() }
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

/**
 * Whom the node's own view believes, apart from the members (filled in live):
 * --trust DIR (a key directory, overriding membership), --trust everyone, and --quorum.
 */
async function trustPolicyOf (config: NodeConfig): Promise<TrustPolicy> {
  const policy: TrustPolicy = {}
  const mode = trustModeOf(config.trust)
  if (mode === 'list') {
    policy.trusted = (await loadTrustDir(config.trust!)).keys
    policy.basis = 'list'
  } else if (mode === 'members') {
    policy.trusted = new Set()
    policy.basis = 'members'
  }
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
