import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { formatMetrics, registerMetricsRoutes, type MetricsSnapshot } from '../../src/node/api/routes/metrics.js'

function snapshot (fields: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  return {
    jobsByVerdict: { verified: 3, failed: 1 },
    claims: 7,
    results: { pass: 5, fail: 2 },
    entries: 120,
    authors: 4,
    logBytes: 50_000,
    logDiskBytes: 81_920,
    pendingEntries: 0,
    equivocatingAuthors: 0,
    syncSessions: 9,
    syncFailures: 1,
    syncReceived: 44,
    syncInSync: 6,
    syncHeadsSent: 210,
    peers: 3,
    connections: 3,
    runningBuilds: 1,
    sandboxRuns: { pass: 5, timeout: 1 },
    sandboxRunSeconds: { count: 6, sum: 12.5 },
    blobBytes: 2048,
    blobCount: 8,
    runsYielded: 2,
    meshMembers: 5,
    quota: { admitted: 100, refusedAuthor: 2, refusedStrangers: 30, relayOverruns: 1 },
    gossip: { accepted: 90, rejected: 1, ignored: 31, outbox: 0 },
    jobIndex: { jobs: 4, bytes: 9_000 },
    residentBytes: 123_456_789,
    network: { relayedConnections: 1, relayReservations: 0, upgrades: 3, blobFetchesRelayed: 4, blobServesRelayed: 0, refused: { connection: 6, reservation: 1 } },
    ...fields
  }
}

/** The exposition format's sample line: name, optional labels with escaped values, a number. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? -?[0-9.e+]+$/

describe('/metrics', () => {
  it('says every figure of the snapshot, each family with its help and type', async () => {
    const text = await formatMetrics(snapshot())
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
    for (const line of samples) expect(line).toMatch(SAMPLE)
    expect(samples).toEqual(expect.arrayContaining([
      'buildhaus_jobs{verdict="failed"} 1',
      'buildhaus_jobs{verdict="verified"} 3',
      'buildhaus_claims_total 7',
      'buildhaus_results{status="pass"} 5',
      'buildhaus_ledger_entries 120',
      'buildhaus_sync_failures_total 1',
      'buildhaus_sync_in_sync_sessions_total 6',
      'buildhaus_ledger_disk_bytes 81920',
      'buildhaus_quota_refused_total{quota="strangers"} 30',
      'buildhaus_gossip_entries_total{verdict="ignored"} 31',
      'process_resident_memory_bytes 123456789',
      'buildhaus_running_builds 1',
      'buildhaus_sandbox_runs_total{status="timeout"} 1',
      'buildhaus_sandbox_run_seconds_sum 12.5',
      'buildhaus_sandbox_run_seconds_count 6',
      'buildhaus_blobs 8',
      'buildhaus_runs_yielded_total 2',
      'buildhaus_mesh_members 5',
      'buildhaus_relayed_connections 1',
      'buildhaus_connection_upgrades_total 3',
      'buildhaus_blob_fetches_relayed_total 4',
      'buildhaus_gater_refusals_total{what="connection"} 6',
      'buildhaus_gater_refusals_total{what="reservation"} 1'
    ]))
    expect(samples).toHaveLength(45)
    expect(text).toContain('# TYPE buildhaus_claims_total counter')
    expect(text).toContain('# TYPE buildhaus_runs_yielded_total counter')
    expect(text).toContain('# TYPE buildhaus_gater_refusals_total counter')
    expect(text).toContain('# TYPE buildhaus_sandbox_run_seconds summary')
    expect(text).toContain('# HELP buildhaus_peers Live members of the mesh besides this node.')
    expect(text.endsWith('\n')).toBe(true)
  })

  it('leaves out the network families on a node that reports no network (a bare API)', async () => {
    const { network: _, ...bare } = snapshot()
    const text = await formatMetrics(bare)
    expect(text).toContain('buildhaus_mesh_members 5')
    expect(text).not.toContain('buildhaus_relayed_connections')
    expect(text).not.toContain('buildhaus_gater_refusals_total')
  })

  it('escapes a label value\'s backslash, double quote and newline as the exposition format says, instead of replacing them', async () => {
    const text = await formatMetrics(snapshot({ jobsByVerdict: { 'a"b\\c\nd': 1 } }))
    const line = text.split('\n').find((l) => l.startsWith('buildhaus_jobs{'))
    expect(line).toBe('buildhaus_jobs{verdict="a\\"b\\\\c\\nd"} 1')
    expect(line).toMatch(SAMPLE)
  })

  it('is served as text/plain version 0.0.4', async () => {
    const app = Fastify()
    registerMetricsRoutes(app, { metrics: () => snapshot() })
    const answer = await app.inject({ method: 'GET', url: '/metrics' })
    expect(answer.statusCode).toBe(200)
    expect(answer.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    expect(answer.body).toContain('buildhaus_blob_bytes 2048')
    await app.close()
  })
})
