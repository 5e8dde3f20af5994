import { beforeAll, describe, expect, it } from 'vitest'
import { CLAIM_LEASE_MS } from '../../src/jobs/constants.js'
import type { JobView } from '../../src/jobs/index.js'
import type { PeerView } from '../../src/node/api/types.js'
import { waitFor } from '../../src/util/wait.js'
import type { NodeProcess } from '../helpers/cluster.js'
import {
  apiRequest, authorOf, buildersOf, isDecided, meshFormed, startLabelledCluster, submitJob, useSuiteTeardown, waitForJob, writeJobDir
} from '../helpers/jobs.js'

/** How long a plan may lag behind the moment a claim stops holding: the service re-plans every second, plus scheduling on a busy machine. */
const PLAN_SLACK_MS = 3_000

/** Nodes that list `slot` (`<job>/<selector>`) as running, as `observer` hears them. */
async function runningOn (observer: NodeProcess, slot: string): Promise<string[]> {
  const { peers } = (await apiRequest<{ peers: PeerView[] }>(observer.apiUrl, 'GET', '/api/peers')).body
  return peers.filter((p) => p.running.includes(slot)).map((p) => p.author)
}

function claimsBy (job: JobView, builder: string): JobView['platforms'][number]['claims'] {
  return job.platforms[0]!.claims.filter((c) => c.builder === builder)
}

describe('claims without a master survive a builder that dies', () => {
  const teardown = useSuiteTeardown()
  let nodes: NodeProcess[] = []

  beforeAll(async () => {
    nodes = await startLabelledCluster(teardown, [['lab-f'], ['lab-f'], ['lab-f']])
  }, 90_000)

  it('finishes a long job on another node after its claimant is killed, within the lease plus the run', async () => {
    const dir = await writeJobDir(teardown, { name: 'long', platforms: ['lab-f'], replicas: 1, steps: [{ name: 'wait', run: 'sleep 8' }], timeout: 60 })
    const submitter = nodes[0]!
    const submittedAt = Date.now()
    const submitted = await submitJob(submitter, dir)
    const slot = `${submitted.id}/lab-f`

    // Wait until the claimant is building (its heartbeat lists the slot), then kill it without a word.
    const [claimantAuthor] = await waitFor(async () => {
      const running = await runningOn(submitter, slot)
      return running.length > 0 ? running : undefined
    }, { timeoutMs: 15_000, intervalMs: 50, what: 'a node to start the long job' })
    const claimant = nodes.find((n) => authorOf(n) === claimantAuthor)!
    const survivor = nodes.find((n) => n !== claimant)!
    const firstClaim = claimsBy((await waitForJob(survivor, submitted.id, (j) => claimsBy(j, claimantAuthor!).length > 0, 5_000, 'the claim to spread'))!, claimantAuthor!)[0]!
    await claimant.kill('SIGKILL')
    const killedAt = Date.now()

    const done = await waitForJob(survivor, submitted.id, isDecided, CLAIM_LEASE_MS + 8_000 + 15_000, 'another node to finish the job')
    const finishedAt = Date.now()
    expect(done.verdict).toBe('verified')
    const [builder] = buildersOf(done, 'lab-f')
    expect(builder).not.toBe(claimantAuthor)
    const takeover = done.platforms[0]!.claims.find((c) => c.builder === builder)!

    // The dead claimant's claim holds until its lease passes (it can no longer renew it), then the
    // next node claims within a plan tick: the takeover costs the rest of the lease and no more.
    expect(takeover.time).toBeGreaterThanOrEqual(firstClaim.lease - 1_000)
    expect(takeover.time).toBeLessThanOrEqual(firstClaim.lease + PLAN_SLACK_MS)
    // Submit to verdict: the lease, the 8 s run, and a few seconds of claiming, sandbox and gossip.
    const total = finishedAt - submittedAt
    expect(total).toBeLessThanOrEqual(CLAIM_LEASE_MS + 8_000 + 5_000)
    console.log(`failover: killed ${killedAt - submittedAt} ms after submit; takeover claim ${takeover.time - firstClaim.lease} ms after the lease; verified ${total} ms after submit`)

    await claimant.restart()
    await meshFormed(nodes)
  })

  it('resumes its own claim at once when a builder restarts mid-run, instead of leaving the slot idle until the lease passes', async () => {
    // Three replicas on three nodes: nobody else may take the restarted node's slot, so only it can finish it.
    const dir = await writeJobDir(teardown, { name: 'restart', platforms: ['lab-f'], replicas: 3, steps: [{ name: 'wait', run: 'sleep 3' }], timeout: 60 })
    const submitter = nodes[0]!
    const submitted = await submitJob(submitter, dir)
    const slot = `${submitted.id}/lab-f`
    const victimAuthor = await waitFor(async () => (await runningOn(submitter, slot)).find((a) => a !== authorOf(submitter)), { timeoutMs: 15_000, intervalMs: 50, what: 'another node to run the job' })
    const victim = nodes.find((n) => authorOf(n) === victimAuthor)!
    const before = claimsBy((await waitForJob(submitter, submitted.id, (j) => claimsBy(j, authorOf(victim)).length > 0, 5_000, 'the claim'))!, authorOf(victim))[0]!

    await victim.kill('SIGKILL')
    await victim.restart()
    const done = await waitForJob(submitter, submitted.id, isDecided, 30_000, 'the job to be finished by all three')
    expect(done.verdict).toBe('verified')
    expect(new Set(buildersOf(done, 'lab-f'))).toEqual(new Set(nodes.map(authorOf)))
    const again = claimsBy(done, authorOf(victim))
    expect(again).toHaveLength(2)
    // The second claim came before the first one's lease ran out: the slot never sat idle waiting for it.
    expect(again[1]!.time).toBeLessThan(before.lease)
    await meshFormed(nodes)
  })
})
