import type { FastifyInstance } from 'fastify'
import type { Summary } from 'prom-client'
import { lazily } from '../../../util/lazy.js'

/** prom-client loads at the first scrape: most nodes are never scraped, and it held ~2 MB in each (BENCHMARKS.md). */
const promClient = lazily('its Prometheus exposition (prom-client)', async () => commonJsExports(await import('prom-client')))

/**
 * A CommonJS package's exports from a dynamic import: Node gives them as named
 * exports, while the bundle (scripts/bundle.js, where prom-client is an entry
 * of its own) gives them only as `default`.
 */
function commonJsExports<T extends object> (namespace: T): T {
  const fallback = (namespace as { default?: unknown }).default
  return 'Registry' in namespace || typeof fallback !== 'object' || fallback === null ? namespace : fallback as T
}

/** A snapshot of what /metrics reports. */
export interface MetricsSnapshot {
  jobsByVerdict: Record<string, number>
  claims: number
  results: Record<string, number>
  entries: number
  authors: number
  /** Bytes of entry lines held, and what the ledger directory takes on disk. */
  logBytes: number
  logDiskBytes: number
  pendingEntries: number
  equivocatingAuthors: number
  syncSessions: number
  syncFailures: number
  syncReceived: number
  syncInSync: number
  syncHeadsSent: number
  peers: number
  connections: number
  runningBuilds: number
  sandboxRuns: Record<string, number>
  sandboxRunSeconds: { count: number, sum: number }
  blobBytes: number
  blobCount: number
  /** The door: entries let in and refused by the quotas, and gossip verdicts. */
  quota: { admitted: number, refusedAuthor: number, refusedStrangers: number, relayOverruns: number }
  gossip: { accepted: number, rejected: number, ignored: number, outbox: number }
  /** The jobs layer's in-memory index: jobs held and the bytes of their entries. */
  jobIndex: { jobs: number, bytes: number }
  residentBytes: number
  /** Runs this node stopped because a counted node's earlier claim filled the slot. */
  runsYielded: number
  /** Members of the node's mesh (from the vouches in the log). */
  meshMembers: number
  /** NAT traversal and the connection gater (absent on a bare API). */
  network?: {
    relayedConnections: number
    relayReservations: number
    upgrades: number
    blobFetchesRelayed: number
    blobServesRelayed: number
    refused: Record<string, number>
  }
}

export interface MetricsContext {
  metrics (): MetricsSnapshot | Promise<MetricsSnapshot>
}

/**
 * The Prometheus text exposition (format 0.0.4), written by prom-client from
 * a fresh registry per scrape: the snapshot is the state, nothing accumulates
 * here. prom-client escapes label values and help text as the format says
 * (`\\`, `\"`, `\n`).
 */
export async function formatMetrics (m: MetricsSnapshot): Promise<string> {
  const { Counter, Gauge, Registry } = await promClient()
  const registry = new Registry()
  const registers = [registry]
  const gauge = (name: string, help: string, value: number): void => {
    new Gauge({ name, help, registers }).set(value)
  }
  const counter = (name: string, help: string, value: number): void => {
    new Counter({ name, help, registers }).inc(value)
  }
  const byLabel = (kind: typeof Gauge | typeof Counter, name: string, help: string, label: string, values: Record<string, number>): void => {
    const metric = new kind({ name, help, labelNames: [label], registers })
    for (const [key, value] of Object.entries(values).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (metric instanceof Gauge) metric.set({ [label]: key }, value)
      else metric.inc({ [label]: key }, value)
    }
  }
  byLabel(Gauge, 'buildhaus_jobs', 'Jobs known to this node, by verdict.', 'verdict', m.jobsByVerdict)
  counter('buildhaus_claims_total', 'Claims this node has published.', m.claims)
  byLabel(Gauge, 'buildhaus_results', 'Results in the log, by status.', 'status', m.results)
  gauge('buildhaus_ledger_entries', 'Entries in the local log.', m.entries)
  gauge('buildhaus_ledger_authors', 'Authors (chains) in the local log.', m.authors)
  gauge('buildhaus_ledger_bytes', 'Bytes of entry lines in the local log (chains and fork evidence).', m.logBytes)
  gauge('buildhaus_ledger_disk_bytes', 'Bytes the local log\'s LevelDB directory takes on disk.', m.logDiskBytes)
  gauge('buildhaus_ledger_pending_entries', 'Entries waiting for their predecessors (sync lag).', m.pendingEntries)
  gauge('buildhaus_ledger_equivocating_authors', 'Authors caught forking their chain.', m.equivocatingAuthors)
  counter('buildhaus_sync_sessions_total', 'Sync sessions completed.', m.syncSessions)
  counter('buildhaus_sync_failures_total', 'Sync sessions that failed.', m.syncFailures)
  counter('buildhaus_sync_received_entries_total', 'Entries received by sync.', m.syncReceived)
  counter('buildhaus_sync_in_sync_sessions_total', 'Sync sessions that ended at the digests: the peer held the same heads.', m.syncInSync)
  counter('buildhaus_sync_heads_sent_total', 'Chain heads announced to peers by sync.', m.syncHeadsSent)
  gauge('buildhaus_peers', 'Live members of the mesh besides this node.', m.peers)
  gauge('buildhaus_connections', 'Open libp2p connections.', m.connections)
  gauge('buildhaus_running_builds', 'Builds running on this node now.', m.runningBuilds)
  byLabel(Counter, 'buildhaus_sandbox_runs_total', 'Sandbox runs on this node, by status.', 'status', m.sandboxRuns)
  registry.registerMetric(totalsOnlySummary('buildhaus_sandbox_run_seconds', 'Duration of sandbox runs on this node.', m.sandboxRunSeconds))
  gauge('buildhaus_blob_bytes', 'Bytes in the local blob store.', m.blobBytes)
  gauge('buildhaus_blobs', 'Blobs in the local blob store.', m.blobCount)
  counter('buildhaus_quota_admitted_total', 'Entries from peers charged to the quotas and let in.', m.quota.admitted)
  byLabel(Counter, 'buildhaus_quota_refused_total', 'Entries from peers refused for now by a quota, by quota.', 'quota', { author: m.quota.refusedAuthor, strangers: m.quota.refusedStrangers })
  counter('buildhaus_quota_relay_overruns_total', 'Gossip deliveries past what an honest relay can forward (the sender was penalised).', m.quota.relayOverruns)
  byLabel(Counter, 'buildhaus_gossip_entries_total', 'Gossiped entries by validation verdict.', 'verdict', { accepted: m.gossip.accepted, rejected: m.gossip.rejected, ignored: m.gossip.ignored })
  gauge('buildhaus_gossip_outbox_entries', 'Own entries waiting to be published at the pace peers take them.', m.gossip.outbox)
  gauge('buildhaus_job_index_jobs', 'Jobs held in memory by the jobs layer.', m.jobIndex.jobs)
  gauge('buildhaus_job_index_bytes', 'Bytes of entry lines the jobs layer holds in memory.', m.jobIndex.bytes)
  gauge('process_resident_memory_bytes', 'Resident memory of the node process.', m.residentBytes)
  counter('buildhaus_runs_yielded_total', 'Runs this node stopped because an earlier claim of a counted node filled the slot.', m.runsYielded)
  gauge('buildhaus_mesh_members', 'Members of this node\'s mesh, from the vouches in the log.', m.meshMembers)
  if (m.network !== undefined) {
    gauge('buildhaus_relayed_connections', 'Open connections that go through a circuit relay.', m.network.relayedConnections)
    gauge('buildhaus_relay_reservations', 'Reservations this node holds as a relay for peers behind NAT.', m.network.relayReservations)
    counter('buildhaus_connection_upgrades_total', 'Relayed connections replaced by a direct one (DCUtR).', m.network.upgrades)
    counter('buildhaus_blob_fetches_relayed_total', 'Blob fetches carried by a relayed connection.', m.network.blobFetchesRelayed)
    counter('buildhaus_blob_serves_relayed_total', 'Blob uploads carried by a relayed connection.', m.network.blobServesRelayed)
    byLabel(Counter, 'buildhaus_gater_refusals_total', 'Connections, reservations and relayed connections refused by the connection gater.', 'what', m.network.refused)
  }
  return await registry.metrics()
}

/**
 * A summary of which only the totals are known (the job service counts runs
 * and their seconds; it keeps no observations for quantiles). prom-client's
 * Summary computes both from observations, so this is a collector of the
 * shape its registry reads: `<name>_sum` and `<name>_count`, formatted and
 * escaped by the registry like every other metric.
 */
function totalsOnlySummary (name: string, help: string, totals: { sum: number, count: number }): Summary {
  const collector = {
    name,
    help,
    type: 'summary',
    aggregator: 'sum',
    get: async () => ({
      name,
      help,
      type: 'summary',
      aggregator: 'sum',
      values: [
        { metricName: `${name}_sum`, labels: {}, value: totals.sum },
        { metricName: `${name}_count`, labels: {}, value: totals.count }
      ]
    })
  }
  return collector as unknown as Summary
}

export function registerMetricsRoutes (app: FastifyInstance, context: MetricsContext): void {
  app.get('/metrics', async (_request, reply) => {
    const text = await formatMetrics(await context.metrics())
    return await reply.type((await promClient()).Registry.PROMETHEUS_CONTENT_TYPE).send(text)
  })
}
