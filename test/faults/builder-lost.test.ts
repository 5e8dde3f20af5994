import { describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { collectState, forkEvidence, waitForMesh, waitForSameLog, waitForVerdicts, type NodeProcess } from '../helpers/cluster.js'
import { NetLab, probeNetns, startLabCluster } from '../helpers/netns.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { sortJobDir } from '../helpers/job-dir.js'

const support = await probeNetns()
if (!support.ok) console.warn(`skipping the lost-builder tests: ${support.reason}`)

/** Long enough that the builder is still at it when it is taken away. */
const SLOW_BUILD = 'sleep 4 && mkdir -p dist && sort words.txt > dist/out.txt'

/**
 * Four nodes, each in its own network namespace (the jobs engineer's
 * SIGKILL test runs on loopback with three): a builder that dies or drops
 * off the network mid-job. Node 0 submits and is never the one taken away.
 */
describe.skipIf(!support.ok)('a builder lost mid-job, in network namespaces', () => {
  const teardown = useTeardown()

  it('killed with SIGKILL: another node takes the slot once the lease lapses, the job verifies, and the restarted builder catches up', async () => {
    const lab = await NetLab.create(teardown, { size: 4 })
    const nodes = await startLabCluster(teardown, lab, { args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes, { timeoutMs: 60_000 })
    const authors = await authorsOf(nodes)
    const scratch = await tempDir(teardown, 'buildhaus-lost-')

    const job = await nodes[0]!.submit(await sortJobDir(scratch, { name: 'killed-builder', build: SLOW_BUILD }))
    const victim = await claimantOtherThan(nodes, authors, job.id, nodes[0]!)
    await victim.kill('SIGKILL')

    const survivors = nodes.filter((n) => n !== victim)
    const verdicts = await waitForVerdicts(survivors, [job.id], { timeoutMs: 120_000 })
    expect(verdicts[job.id]).toBe('verified')
    const view = await nodes[0]!.job(job.id)
    const platform = view.platforms[0]!
    // The killed builder claimed but never reported; two others delivered.
    expect(platform.claims.map((c) => c.builder)).toContain(authors.get(victim))
    expect(platform.results.map((r) => r.builder)).not.toContain(authors.get(victim))
    expect(new Set(platform.results.filter((r) => r.status === 'pass').map((r) => r.builder)).size).toBeGreaterThanOrEqual(2)

    await victim.restart()
    await waitForSameLog(nodes, { timeoutMs: 60_000 })
    expect((await victim.job(job.id)).verdict).toBe('verified')
    expect(forkEvidence(await collectState(nodes))).toEqual([])
  }, 240_000)

  it('cut off the network mid-job: the others finish without it; on healing its late result joins the job, which stays verified, and every log is the same', async () => {
    const lab = await NetLab.create(teardown, { size: 4 })
    const nodes = await startLabCluster(teardown, lab, { args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes, { timeoutMs: 60_000 })
    const authors = await authorsOf(nodes)
    const scratch = await tempDir(teardown, 'buildhaus-lost-')

    const job = await nodes[0]!.submit(await sortJobDir(scratch, { name: 'isolated-builder', build: SLOW_BUILD }))
    const victim = await claimantOtherThan(nodes, authors, job.id, nodes[0]!)
    await lab.partition([nodes.indexOf(victim)])

    // Alone, it still finishes its build and records the result in its own log.
    await waitFor(async () => (await victim.job(job.id)).platforms[0]!.results.some((r) => r.builder === authors.get(victim)), {
      timeoutMs: 60_000, intervalMs: 500, what: 'the isolated builder to record its own result'
    })
    const connected = nodes.filter((n) => n !== victim)
    const verdicts = await waitForVerdicts(connected, [job.id], { timeoutMs: 120_000 })
    expect(verdicts[job.id]).toBe('verified')
    const before = (await nodes[0]!.job(job.id)).platforms[0]!
    expect(before.results.map((r) => r.builder)).not.toContain(authors.get(victim))

    await lab.heal()
    await waitForSameLog(nodes, { timeoutMs: 90_000 })
    const after: JobView = await nodes[0]!.job(job.id)
    expect(after.verdict).toBe('verified')
    // Extra results are evidence, not conflict: three builders, all agreeing.
    const passing = after.platforms[0]!.results.filter((r) => r.status === 'pass')
    expect(new Set(passing.map((r) => r.builder)).size).toBe(3)
    expect(new Set(passing.map((r) => JSON.stringify(r.artifacts))).size).toBe(1)
    expect(forkEvidence(await collectState(nodes))).toEqual([])
  }, 240_000)
})

async function authorsOf (nodes: NodeProcess[]): Promise<Map<NodeProcess, string>> {
  return new Map(await Promise.all(nodes.map(async (n) => [n, (await n.health()).author] as const)))
}

/** Wait for a node other than `spared` to claim the job, and return it. */
async function claimantOtherThan (nodes: NodeProcess[], authors: Map<NodeProcess, string>, jobId: string, spared: NodeProcess): Promise<NodeProcess> {
  return await waitFor(async () => {
    const claims = (await spared.job(jobId)).platforms[0]!.claims
    return nodes.find((n) => n !== spared && claims.some((c) => c.builder === authors.get(n)))
  }, { timeoutMs: 30_000, intervalMs: 100, what: 'a builder other than the submitter to claim the job' })
}
