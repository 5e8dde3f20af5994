import type { Libp2p } from '@libp2p/interface'
import type { BlobStore } from '../../blobs/store.js'
import type { ClockSkew, Presence } from '../../gossip/presence/index.js'
import { computeReputation, findArtifact, type BlobFetcher, type JobService } from '../../jobs/index.js'
import type { Admission, EntryGossip, LedgerStore, LedgerSync } from '../../ledger/index.js'
import type { ApiContext, NodeDataContext } from './server.js'
import type { NodeEvent } from './routes/events.js'
import { summarise } from './routes/jobs.js'
import { trace, tracing } from '../../util/trace.js'
import type { MetricsSnapshot } from './routes/metrics.js'
import type { NodeIdentity } from '../home/identity.js'
import { cached, directoryBytes } from './dir-size.js'
import type { MeshMembership } from '../../membership/index.js'
import type { MembersResponse } from './routes/members.js'
import type { LoadedMesh, TrustMode } from '../home/mesh.js'
import type { LogUsage, NetworkStatus, PeerReach } from './types.js'
import type { LiveLogRelay } from '../services/live-logs.js'
import type { WatchesContext } from './routes/watches.js'

export interface NodeParts {
  identity: NodeIdentity
  version: string
  startedAt: number
  presence: Presence
  libp2p: Libp2p
  ledger: LedgerStore
  admission: Admission
  gossip: EntryGossip
  blobs: BlobStore
  /** Fetches a blob from its holders first (the builds' fetcher). */
  fetcher: BlobFetcher
  sync: LedgerSync
  jobs: JobService
  mesh: LoadedMesh
  membership: MeshMembership
  trustMode: TrustMode
  addressesOf (peerId: string): Promise<string[]>
  /** How this node reaches a peer, and its own place in the network. */
  reachOf?: (peerId: string) => PeerReach
  network?: () => NetworkStatus
  /** This node's clock against its peers' (the clock watch's last estimate). */
  clockSkew?: () => ClockSkew | undefined
  /** Live logs of running builds (this node's and the ones it follows). */
  live?: LiveLogRelay
  /** Watches: the log's, and this node's polling of them. */
  watches?: WatchesContext['watches']
}

/** The ledger directory's size on disk is measured at most this often. */
const DISK_USAGE_TTL_MS = 5_000

function networkMetrics (n: NetworkStatus): NonNullable<MetricsSnapshot['network']> {
  return {
    relayedConnections: n.connections.relayed,
    relayReservations: n.relay.reservations,
    upgrades: n.upgraded,
    blobFetchesRelayed: n.relayedBlobs.fetched,
    blobServesRelayed: n.relayedBlobs.served,
    refused: { ...n.refused }
  }
}

/** Reputation is computed from the whole log; recompute at most this often. */
const REPUTATION_TTL_MS = 2_000

/** Everything the HTTP API reads and changes, from the node's running parts. */
export function nodeApiContext (parts: NodeParts): ApiContext & NodeDataContext {
  const { identity, presence, libp2p, ledger, admission, gossip, blobs, fetcher, sync, jobs, mesh, membership } = parts
  const ledgerDisk = cached(DISK_USAGE_TTL_MS, async () => await directoryBytes(identity.paths.ledger))
  const logUsage = async (): Promise<LogUsage> => {
    const stats = ledger.stats()
    return { entries: stats.entries, authors: stats.authors, bytes: stats.bytes, diskBytes: await ledgerDisk() }
  }
  const membersNow = (): MembersResponse => {
    const view = membership.view()
    const self = identity.author
    const asMember = view.members.find((m) => m.key === self)
    const asCandidate = view.candidates.find((c) => c.key === self)
    return {
      mesh: {
        name: mesh.definition.name,
        file: mesh.file,
        source: mesh.source,
        fingerprint: mesh.fingerprint,
        founders: mesh.definition.founders,
        admit: mesh.definition.admit,
        closed: mesh.definition.closed === true
      },
      trust: parts.trustMode,
      self: {
        author: self,
        member: asMember !== undefined,
        founder: asMember?.founder ?? false,
        vouchers: asMember?.vouchers ?? asCandidate?.vouchers ?? [],
        needed: asMember !== undefined ? 0 : asCandidate?.needed ?? mesh.definition.admit
      },
      members: view.members,
      candidates: view.candidates,
      barred: view.barred
    }
  }
  let reputation: { at: number, value: ReturnType<typeof computeReputation> } | undefined
  const reputationNow = (): ReturnType<typeof computeReputation> => {
    if (reputation === undefined || Date.now() - reputation.at > REPUTATION_TTL_MS) reputation = { at: Date.now(), value: computeReputation(jobs.foldedViews()) }
    return reputation.value
  }
  return {
    peerId: identity.peerId.toString(),
    author: identity.author,
    version: parts.version,
    startedAt: parts.startedAt,
    token: identity.apiToken,
    local: () => presence.local,
    memberCount: () => presence.size,
    connectionCount: () => libp2p.getConnections().length,
    logUsage,
    ownAddresses: () => libp2p.getMultiaddrs().map(String),
    members: () => presence.members(),
    addressesOf: parts.addressesOf,
    ...(parts.reachOf !== undefined ? { reachOf: parts.reachOf } : {}),
    ...(parts.network !== undefined ? { network: parts.network, reachability: () => parts.network!().reachability } : {}),
    ...(parts.clockSkew !== undefined ? { clockSkew: parts.clockSkew } : {}),
    reputation: reputationNow,
    isEquivocating: (author) => ledger.isEquivocating(author),
    isMember: (author) => membership.isMember(author),

    jobs,
    ...(parts.live !== undefined ? { live: parts.live } : {}),
    ...(parts.watches !== undefined ? { watches: parts.watches } : {}),

    blobs,
    fetchBlob: async (hash, signal) => {
      // The builders whose results name this blob first (a log, an artifact), then anyone connected.
      const holders = new Set<string>()
      for (const view of jobs.foldedViews()) {
        if (view.source === hash) holders.add(view.submitter)
        for (const platform of view.platforms) {
          for (const r of platform.results) {
            if (r.log === hash || r.artifacts.some((a) => a.sha256 === hash)) holders.add(r.builder)
          }
        }
        for (const d of view.diagnoses) if (d.report === hash) holders.add(d.author)
      }
      holders.delete(identity.author)
      // The same fetcher as a build's: a holder this node is not connected to is dialed where the address book allows.
      await fetcher.fetch(hash, { fromAuthors: [...holders], signal })
    },

    exportLines: () => ledger.exportLines(),
    entry: async (id) => {
      const found = await ledger.get(id)
      return found === undefined ? undefined : { id: found.id, entry: found.entry as unknown as Record<string, unknown> }
    },

    subscribe: (listener: (event: NodeEvent) => void) => {
      const onJob = (evt: CustomEvent<{ id: string }>): void => {
        const view = jobs.get(evt.detail.id)
        if (view === undefined) return
        listener({ event: 'job', data: summarise(view) })
        if (tracing && view.verdict !== 'pending') trace(`sse-${view.verdict}`, view.id)
      }
      const onPeers = (): void => { listener({ event: 'peers', data: { count: presence.size } }) }
      const onFork = (evt: Event): void => {
        const proof = (evt as CustomEvent<{ author: string, seq: number }>).detail
        listener({ event: 'fork', data: { author: proof.author, seq: proof.seq } })
      }
      const offJob = jobs.on('job', onJob)
      presence.addEventListener('join', onPeers)
      presence.addEventListener('leave', onPeers)
      ledger.addEventListener('fork', onFork)
      return () => {
        offJob()
        presence.removeEventListener('join', onPeers)
        presence.removeEventListener('leave', onPeers)
        ledger.removeEventListener('fork', onFork)
      }
    },

    metrics: async (): Promise<MetricsSnapshot> => {
      const views = jobs.list()
      const jobsByVerdict: Record<string, number> = { pending: 0, verified: 0, failed: 0, mismatch: 0, unmatched: 0, cancelled: 0 }
      const results: Record<string, number> = {}
      for (const view of views) {
        jobsByVerdict[view.verdict] = (jobsByVerdict[view.verdict] ?? 0) + 1
        for (const p of view.platforms) for (const r of p.results) results[r.status] = (results[r.status] ?? 0) + 1
      }
      const stats = jobs.getStats()
      const ledgerStats = ledger.stats()
      const syncStats = sync.stats()
      const usage = blobs.usage()
      const quota = admission.stats()
      const gossiped = gossip.stats()
      const index = jobs.indexStats()
      return {
        jobsByVerdict,
        claims: stats.claims,
        results,
        entries: ledgerStats.entries,
        authors: ledgerStats.authors,
        logBytes: ledgerStats.bytes,
        logDiskBytes: await ledgerDisk(),
        pendingEntries: ledgerStats.pending,
        equivocatingAuthors: ledgerStats.equivocatingAuthors,
        syncSessions: syncStats.sessions,
        syncFailures: syncStats.failed,
        syncReceived: syncStats.received,
        syncInSync: syncStats.inSync,
        syncHeadsSent: syncStats.headsSent,
        peers: presence.size,
        connections: libp2p.getConnections().length,
        runningBuilds: stats.running,
        sandboxRuns: stats.runs,
        sandboxRunSeconds: stats.runSeconds,
        blobBytes: usage.bytes,
        blobCount: usage.count,
        quota: { admitted: quota.admitted, refusedAuthor: quota.refusedAuthor, refusedStrangers: quota.refusedStrangers, relayOverruns: quota.relayOverruns },
        gossip: gossiped,
        jobIndex: index,
        residentBytes: process.memoryUsage.rss(),
        runsYielded: stats.yielded,
        meshMembers: membership.members().size,
        ...(parts.network !== undefined ? { network: networkMetrics(parts.network()) } : {})
      }
    },

    findArtifact: (sha256, job) => findArtifact(jobs.foldedViews(), sha256, job),
    membership: membersNow,
    membershipEntries: async function * () {
      for (const type of ['vouch', 'unvouch', 'revoke']) {
        for await (const e of ledger.byType(type)) yield { id: e.id, entry: e.entry as unknown as Record<string, unknown> }
      }
    },
    vouch: async (member, vouch) => {
      const entry = await ledger.append(vouch ? 'vouch' : 'unvouch', { member })
      return {
        entry: entry.id,
        type: vouch ? 'vouch' : 'unvouch',
        member,
        admitted: membership.isMember(member),
        selfMember: membership.isMember(identity.author),
        members: membersNow()
      }
    },
    forks: async () => (await ledger.forks()).map((f) => ({ author: f.author, seq: f.seq, ids: f.entries.map((e) => e.id) }))
  }
}
