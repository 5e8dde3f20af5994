import { describe, expect, it } from 'vitest'
import { packDirectory } from '../../src/archive/index.js'
import type { JobView } from '../../src/jobs/index.js'
import type { JobsResponse, JobSummary } from '../../src/node/api/routes/jobs.js'
import { waitFor } from '../../src/util/wait.js'
import type { NodeProcess } from '../helpers/cluster.js'
import { apiRequest, authorOf, idleWhileQueued, postJob, startLabelledCluster, uploadBlob } from '../helpers/jobs.js'
import { useTeardown } from '../helpers/temp-home.js'
import { tempJobDir } from '../helpers/job-dir.js'

const JOBS = 100
/** Every job wants two distinct builders: the harder case for duplicates (a slot can be over-served by either replica). */
const REPLICAS = 2

const SPEC = {
  name: 'small',
  platforms: ['lab-l'],
  replicas: REPLICAS,
  steps: [{ name: 'build', run: 'mkdir -p out && sort words.txt > out/sorted.txt' }],
  artifacts: ['out/*'],
  timeout: 60
}

async function jobsOn (node: NodeProcess): Promise<JobSummary[]> {
  return (await apiRequest<JobsResponse>(node, 'GET', '/api/jobs')).body.jobs
}

describe('a burst of small jobs on four nodes', () => {
  const teardown = useTeardown()

  it(`completes ${JOBS} jobs ×${REPLICAS} with under 5 % duplicate runs, every node taking a fair share and none idling while work waits`, async () => {
    const nodes = await startLabelledCluster(teardown, [['lab-l'], ['lab-l'], ['lab-l'], ['lab-l']])
    const dir = await tempJobDir(teardown, SPEC, { 'words.txt': 'pear\napple\nfig\n' })
    const packed = await packDirectory(dir)
    // Every node submits a quarter (four submitters: fair share interleaves them).
    const sources = await Promise.all(nodes.map(async (n) => await uploadBlob(n, packed.bytes)))

    const started = Date.now()
    const ids = (await Promise.all(nodes.map(async (node, i) => {
      const mine: string[] = []
      for (let k = 0; k < JOBS / nodes.length; k++) mine.push((await postJob(node, SPEC, sources[i]!)).id)
      return mine
    }))).flat()
    const submittedMs = Date.now() - started

    let summaries: JobSummary[] = []
    await waitFor(async () => {
      summaries = (await jobsOn(nodes[0]!)).filter((j) => ids.includes(j.id))
      return summaries.length === JOBS && summaries.every((j) => j.verdict === 'verified')
    }, { timeoutMs: 180_000, intervalMs: 250, what: `all ${JOBS} jobs to be verified` })
    const elapsedMs = Date.now() - started

    // Every node holds the same verdicts.
    for (const node of nodes.slice(1)) {
      await waitFor(async () => {
        const theirs = (await jobsOn(node)).filter((j) => ids.includes(j.id))
        return theirs.length === JOBS && theirs.every((j) => j.verdict === 'verified')
      }, { timeoutMs: 20_000, intervalMs: 250, what: `${node.peerId} to see every verdict` })
    }

    const views = await Promise.all(ids.map(async (id) => (await apiRequest<JobView>(nodes[0]!, 'GET', `/api/jobs/${id}`)).body))
    const results = views.flatMap((j) => j.platforms.flatMap((p) => p.results))
    const extra = views.flatMap((j) => j.platforms).reduce((n, p) => n + Math.max(0, p.results.length - p.replicas), 0)
    const perNode = new Map(nodes.map((n) => [authorOf(n), 0]))
    for (const r of results) perNode.set(r.builder, (perNode.get(r.builder) ?? 0) + 1)
    // From the log: how long each node sat without a run while some slot still had an unclaimed place.
    const idle = idleWhileQueued(views, nodes.map(authorOf))
    const window = idle.end - idle.start
    const figures = {
      jobs: JOBS,
      replicas: REPLICAS,
      submitMs: submittedMs,
      allVerifiedMs: elapsedMs,
      jobsPerSecond: Math.round(JOBS / (elapsedMs / 1000) * 10) / 10,
      results: results.length,
      duplicates: extra,
      duplicateRate: extra / results.length,
      perNode: [...perNode.values()],
      queuedWindowMs: window,
      idleWhileQueuedMs: [...idle.perNode.values()],
      longestIdleWhileQueuedMs: [...idle.longest.values()]
    }
    console.log(`burst: ${JSON.stringify(figures)}`)
    if (process.env.DEBUG_IDLE !== undefined) {
      const t0 = Math.min(...views.map((v) => v.time))
      const lines: Array<[number, string]> = []
      for (const v of views) {
        lines.push([v.time, `job ${v.id.slice(0, 6)} by ${v.submitter.slice(0, 4)}`])
        const p = v.platforms[0]!
        for (const c of p.claims) lines.push([c.time, `claim ${v.id.slice(0, 6)} by ${c.builder.slice(0, 4)}`])
        for (const r of p.results) lines.push([r.time, `result ${v.id.slice(0, 6)} by ${r.builder.slice(0, 4)} [${r.start - t0}-${r.end - t0}]`])
      }
      lines.sort((a, b) => a[0] - b[0])
      console.log(lines.map(([t, l]) => `${t - t0} ${l}`).join('\n'))
    }

    expect(results.length).toBeGreaterThanOrEqual(JOBS * REPLICAS)
    expect(extra / results.length).toBeLessThan(0.05)
    // A fair share is a quarter of the runs; allow for the spread of rendezvous ranks and timing.
    for (const count of perNode.values()) expect(count).toBeGreaterThanOrEqual(JOBS * REPLICAS / nodes.length / 2)
    // Between one run's result and its next claim a node publishes, plans and claims: tens of
    // milliseconds each time, more when the machine is loaded. A node that claimed only on its plan
    // tick (1 s) would idle about a tick after every short run, most of the queued time: the share
    // below catches that whatever the load. A single stretch may reach a tick when the machine is
    // busy (seen at load 15: 1.2 s), so the longest is only held to a few ticks: no node stalls.
    expect(window).toBeGreaterThan(0)
    for (const longest of idle.longest.values()) expect(longest).toBeLessThan(3_000)
    // And all those slivers together stay well under what claiming on the tick would leave (most of
    // the queued time: runs here take a tenth of a tick). The share grows with the machine's load and
    // as runs get shorter: on the project's 2-core VM the same commit read 12–27 % (2026-12-07), so
    // the bound sits at 40 %, between that and the tick's (97 %, measured with the plan on the tick alone).
    const idleTotal = [...idle.perNode.values()].reduce((a, b) => a + b, 0)
    expect(idleTotal / (window * nodes.length)).toBeLessThan(0.4)
  }, 300_000)
})
