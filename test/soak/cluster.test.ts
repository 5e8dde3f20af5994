import { describe, expect, it } from 'vitest'
import { runCluster } from '../../bench/cluster.js'

/**
 * Fifty full nodes (five processes of ten, real libp2p over loopback, real
 * LevelDB, real bubblewrap) build 20 jobs of 2 replicas each. What a user of
 * the mesh would notice: every node shows every job verified, every node
 * ends up with the same log, and few builds are done twice. Timings are the
 * benchmark's business (bench/cluster.ts, BENCHMARKS.md), not asserted here.
 */
const NODES = Number(process.env.SOAK_NODES ?? 50)
const HOSTS = Number(process.env.SOAK_HOSTS ?? 5)
const JOBS = Number(process.env.SOAK_JOBS ?? 20)
const REPLICAS = 2

describe(`a mesh of ${NODES} nodes in ${HOSTS} processes`, () => {
  it(`builds ${JOBS} jobs × ${REPLICAS} replicas to verified on every node, converges, with under 5% duplicate builds`, async () => {
    const run = await runCluster({ nodes: NODES, hosts: HOSTS, jobs: JOBS, phaseTimeoutMs: 10 * 60_000, label: `soak ${NODES} nodes` })
    console.log(JSON.stringify(run))
    expect(run.error).toBeUndefined()
    // runCluster polls every node's /api/jobs until each shows each job verified.
    expect(run.completed).toBe(true)
    // …and every node's /api/log until all hold the same set of lines.
    expect(run.converged).toBe(true)
    // The converged log holds at least each job, its claims and its results.
    expect(run.entries).toBeGreaterThanOrEqual(JOBS * (1 + 2 * REPLICAS))
    expect(run.duplicateResults).toBeLessThan(0.05 * JOBS * REPLICAS)
  }, 30 * 60_000)
})
