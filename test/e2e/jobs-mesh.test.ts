import { readdirSync, readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import type { PeerView } from '../../src/node/api/types.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess, type NodeProcess, waitForMesh } from '../helpers/cluster.js'
import { apiRequest, authorOf, buildersOf, isDecided, jobOn, startLabelledCluster, submitCli, submitJob, useSuiteTeardown, verdictSummary, waitForJob } from '../helpers/jobs.js'
import { tempJobDir } from '../helpers/job-dir.js'

/**
 * Four `join` processes on loopback offering made-up platform labels (so the
 * test does not depend on this machine's): three `lab-a`, one `lab-b`. Real
 * bubblewrap, real gossip, no coordinator.
 */
describe('jobs on a mesh of A, A, A, B', () => {
  const teardown = useSuiteTeardown()
  let nodes: NodeProcess[] = []
  let a1: NodeProcess, a2: NodeProcess, a3: NodeProcess, b: NodeProcess

  beforeAll(async () => {
    nodes = await startLabelledCluster(teardown, [['lab-a'], ['lab-a'], ['lab-a'], ['lab-b']])
    ;[a1, a2, a3, b] = nodes as [NodeProcess, NodeProcess, NodeProcess, NodeProcess]
  }, 90_000)

  it('builds A×2 on two distinct A nodes and B×1 on the B node, and every node reports the same verdicts', async () => {
    const dir = await tempJobDir(teardown, {
      name: 'spread',
      platforms: ['lab-a', 'lab-b'],
      replicas: { 'lab-a': 2, 'lab-b': 1 },
      steps: [{ name: 'build', run: 'mkdir -p out && tr a-z A-Z < words.txt > out/words.txt' }],
      artifacts: ['out/*'],
      independent: ['out/*'],
      timeout: 60
    }, { 'words.txt': 'apple\nbanana\n' })
    const submitted = await submitJob(b, dir)

    const views: JobView[] = []
    for (const node of nodes) views.push(await waitForJob(node, submitted.id, isDecided, 30_000, `a verdict on ${node.peerId}`))
    const first = views[0]!
    expect(first.verdict, JSON.stringify(first.platforms.map((p) => p.reason))).toBe('verified')
    expect(first.crossPlatform.verdict).toBe('agree')

    const aAuthors = [a1, a2, a3].map(authorOf)
    const aBuilders = buildersOf(first, 'lab-a')
    expect(new Set(aBuilders).size).toBe(2)
    for (const builder of aBuilders) expect(aAuthors).toContain(builder)
    expect(buildersOf(first, 'lab-b')).toEqual([authorOf(b)])

    // The same verdicts on every node: once the last results have spread, the views agree.
    await waitFor(async () => {
      const summaries = await Promise.all(nodes.map(async (n) => JSON.stringify(verdictSummary((await jobOn(n, submitted.id))!))))
      return summaries.every((s) => s === summaries[0])
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'every node to report the same verdicts' })
  })

  it('says a platform nobody offers is unmatched, and builds it as soon as a matching node joins', async () => {
    const dir = await tempJobDir(teardown, { name: 'lonely', platforms: ['lab-c'], replicas: 1, steps: [{ name: 'build', run: 'true' }], timeout: 30 })
    const submitted = await submitJob(a1, dir)

    const unmatched = await waitForJob(a1, submitted.id, (j) => j.verdict === 'unmatched', 10_000, 'the job to be unmatched')
    expect(unmatched.platforms[0]!.reason).toBe('unmatched: no live node offers lab-c')
    expect(unmatched.reason).toContain('unmatched: no live node offers lab-c')
    // Every node explains it the same way, through the API and `status --json`.
    for (const node of nodes) {
      const view = await waitForJob(node, submitted.id, (j) => j.verdict === 'unmatched', 10_000, `${node.peerId} to know the job`)
      expect(view.platforms[0]!.reason).toBe('unmatched: no live node offers lab-c')
    }
    const status = await runCli(['status', submitted.id, '--api', a2.apiUrl, '--json'])
    expect(status.code, status.stderr).toBe(3)
    const statusView = JSON.parse(status.stdout) as JobView
    expect(statusView.verdict).toBe('unmatched')
    expect(statusView.platforms[0]!.reason).toBe('unmatched: no live node offers lab-c')

    const c = await startNodeProcess(teardown, { args: ['--platform', 'lab-c', '--slots', '1', '--bootstrap', a1.address] })
    const joinedAt = Date.now()
    const done = await waitForJob(a1, submitted.id, isDecided, 30_000, 'the lab-c job to be built once a lab-c node joined')
    expect(done.verdict).toBe('verified')
    expect(buildersOf(done, 'lab-c')).toEqual([authorOf(c)])
    // "As soon as": once up, the newcomer has synced the log; it claims at its first plan, and its
    // result travels back (generous for a shared machine).
    expect(Date.now() - joinedAt).toBeLessThan(10_000)
    await c.stop()
    await waitForMesh(nodes)
  })

  it('ends `submit --wait` with 0 for verified, 1 for failed and 3 for no verdict in time', async () => {
    const pass = await tempJobDir(teardown, { name: 'pass', platforms: ['lab-a'], replicas: 1, steps: [{ name: 'ok', run: 'true' }], timeout: 30 })
    const fail = await tempJobDir(teardown, { name: 'fail', platforms: ['lab-a'], replicas: 1, steps: [{ name: 'no', run: 'exit 7' }], timeout: 30 })
    const never = await tempJobDir(teardown, { name: 'never', platforms: ['lab-z'], replicas: 1, steps: [{ name: 'ok', run: 'true' }], timeout: 30 })
    const [verified, failed, timedOut] = await Promise.all([
      submitCli(a2, pass, ['--wait']),
      submitCli(a3, fail, ['--wait']),
      submitCli(b, never, ['--wait', '--wait-timeout', '2'])
    ])
    expect(verified.code, verified.stderr).toBe(0)
    expect((JSON.parse(verified.stdout) as JobView).verdict).toBe('verified')
    expect(failed.code, failed.stderr).toBe(1)
    const failedView = JSON.parse(failed.stdout) as JobView
    expect(failedView.verdict).toBe('failed')
    expect(failedView.platforms[0]!.results[0]!.steps[0]!.exit).toBe(7)
    expect(timedOut.code, timedOut.stderr).toBe(3)
    expect((JSON.parse(timedOut.stdout) as JobView).verdict).toBe('unmatched')
    expect(timedOut.stderr).toContain('no verdict')
  })

  it('cancels a running job: the builders abort it, it shows cancelled, the slots free up; other nodes may not cancel it', async () => {
    const marker = `cancel-me-${process.pid}-${Date.now()}`
    const dir = await tempJobDir(teardown, {
      name: 'long',
      platforms: ['lab-a'],
      replicas: 2,
      steps: [{ name: 'wait', run: `sleep 60; echo ${marker}` }],
      timeout: 120
    })
    const submitted = await submitJob(a1, dir)
    // Both builders list it as running (the sleep has started).
    const slot = `${submitted.id}/lab-a`
    const runners = await waitFor(async () => {
      const peers = (await apiRequest<{ peers: PeerView[] }>(b, 'GET', '/api/peers')).body.peers
      const running = peers.filter((p) => p.running.includes(slot))
      return running.length === 2 ? running : undefined
    }, { timeoutMs: 20_000, intervalMs: 100, what: 'two builders to run the long job' })
    await waitFor(() => processesWith(marker) > 0, { timeoutMs: 10_000, what: 'both sleeps to start' })

    // Only the submitter's cancel counts: another node refuses, with a 403 and one sentence.
    const refused = await runCli(['cancel', submitted.id, '--api', b.apiUrl, '--home', b.home])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/only the node that submitted job [0-9a-f]{64} can cancel it/)
    const forbidden = await apiRequest<{ error: { name: string, message: string } }>(b, 'POST', `/api/jobs/${submitted.id}/cancel`, {})
    expect(forbidden.status).toBe(403)
    expect(forbidden.body.error.name).toBe('NotSubmitterError')
    const unknown = await apiRequest<{ error: { name: string } }>(b, 'POST', `/api/jobs/${'0'.repeat(64)}/cancel`, {})
    expect(unknown.status).toBe(404)

    const cancelledAt = Date.now()
    const cancel = await runCli(['cancel', submitted.id, '--api', a1.apiUrl, '--home', a1.home, '--reason', 'changed my mind'])
    expect(cancel.code, cancel.stderr).toBe(0)
    for (const node of nodes) {
      const view = await waitForJob(node, submitted.id, (j) => j.verdict === 'cancelled', 10_000, `${node.peerId} to see the cancel`)
      expect(view.cancelReason).toBe('changed my mind')
    }
    // The runs are aborted (no sandboxed sleep left) and the builders advertise the slots free again.
    await waitFor(() => processesWith(marker) === 0, { timeoutMs: 10_000, what: 'the cancelled sleeps to be killed' })
    const runnerAuthors = runners.map((r) => r.author)
    await waitFor(async () => {
      const peers = (await apiRequest<{ peers: PeerView[] }>(b, 'GET', '/api/peers')).body.peers
      return peers.filter((p) => runnerAuthors.includes(p.author)).every((p) => !p.running.includes(slot) && p.free === p.slots)
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'the builders to free their slots' })
    expect(Date.now() - cancelledAt).toBeLessThan(10_000)
    const final = (await jobOn(a1, submitted.id))!
    // A cancelled run publishes nothing: no result is evidence of a build that never finished.
    expect(final.platforms[0]!.results).toEqual([])

    // The freed slots take new work at once.
    const next = await tempJobDir(teardown, { name: 'after', platforms: ['lab-a'], replicas: 3, steps: [{ name: 'ok', run: 'true' }], timeout: 30 })
    const after = await submitJob(a1, next)
    const built = await waitForJob(a1, after.id, isDecided, 20_000, 'a job after the cancel to be built')
    expect(built.verdict).toBe('verified')
  })
})

/** How many processes on this machine carry the marker in their command line (a sandboxed step and its bwrap). */
function processesWith (marker: string): number {
  let count = 0
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) count++
    } catch {}
  }
  return count
}
