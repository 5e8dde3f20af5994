import { describe, expect, it } from 'vitest'
import { maxClaimHoldMs } from '../../src/jobs/constants.js'
import { waitFor } from '../../src/util/wait.js'
import { startCluster, waitForMesh, waitForVerdicts, writeJobDir } from '../helpers/cluster.js'
import { describeJob } from '../helpers/jobs.js'
import { heartbeatOf, hostilePeer, throwawayAuthor } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'

/**
 * Issue 12, attack 1, by a member gone bad: a founder of the mesh (its key
 * held by a hostile peer, which also heartbeats as it) claims a job with
 * clock 0 and lease 2^53-1, says "running" in every heartbeat, and claims
 * again and again, but never delivers. Members' claims are honoured, so it
 * holds the slot: for one bounded lease (the job's timeout plus
 * CLAIM_OVERRUN_MS after its first claim's own time), no longer. Its first
 * claim is dated so that this bound ends 30 s after it is published, so
 * that the test need not wait the 11 minutes of a real 60 s job's bound.
 */
const LEFT_MS = 30_000
const TIMEOUT_S = 60

describe('a member gone bad', () => {
  const teardown = useTeardown()

  it('stalls a slot for one bounded lease at most: not by its lease, nor by heartbeats that say running, nor by claiming again', async () => {
    const nodes = await startCluster(teardown, { size: 2, args: ['--slots', '1'] })
    await waitForMesh(nodes)
    const badKey = testMesh().takeKey()
    const bad = throwawayAuthor(badKey)
    const peer = await hostilePeer(teardown, { key: badKey })
    await peer.connect(nodes[0]!.address)
    const scratch = await tempDir(teardown, 'buildhaus-bad-member-')
    // A build long enough that the bad claim arrives while an honest run is still under way.
    const job = await nodes[0]!.submit(await writeJobDir(scratch, { name: 'held', replicas: 1, timeout: TIMEOUT_S, build: 'sleep 6 && mkdir -p dist && sort words.txt > dist/out.txt' }))
    const slot = `${job.id}/linux-x64`
    const bound = Date.now() + LEFT_MS
    const first = bad.next({ clock: 0, time: bound - maxClaimHoldMs(TIMEOUT_S), type: 'claim', body: { job: job.id, platform: 'linux-x64', lease: Number.MAX_SAFE_INTEGER } })
    let clock = 1
    const beat = async (): Promise<void> => {
      await peer.publishHeartbeat(heartbeatOf({ running: [slot], time: Date.now() }))
    }
    await waitFor(async () => {
      await beat()
      await peer.publishEntry(first)
      return new Set((await nodes[0]!.job(job.id)).entries).has(first.id)
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'the nodes to store the bad member\'s claim' })

    // Until the bound (and after it), it says "running" every second and claims again every 3 s.
    let stop = false
    const noise = (async () => {
      let n = 0
      while (!stop) {
        await beat().catch(() => {})
        if (n++ % 3 === 0) {
          const again = bad.next({ clock: clock++, time: Date.now(), type: 'claim', body: { job: job.id, platform: 'linux-x64', lease: Number.MAX_SAFE_INTEGER } })
          await peer.publishEntry(again).catch(() => {})
        }
        await new Promise((resolve) => setTimeout(resolve, 1_000))
      }
    })()
    teardown(async () => { stop = true; await noise })

    try {
      const verdicts = await waitForVerdicts(nodes, [job.id], { timeoutMs: LEFT_MS + 120_000 })
      expect(verdicts[job.id]).toBe('verified')
    } finally {
      stop = true
      await noise
    }
    const verifiedAt = Date.now()
    const view = await nodes[1]!.job(job.id)
    const platform = view.platforms[0]!
    const honest = new Set(nodes.map((n) => n.ready.author))
    const result = platform.results.find((r) => r.counted)!
    expect(honest.has(result.builder), describeJob(view)).toBe(true)
    // The member's claim was honoured up to its bound (nothing honest was published before it)…
    expect(result.time, describeJob(view)).toBeGreaterThanOrEqual(bound)
    // …and not after: the slot went to an honest node as soon as the bound passed, re-claims or not.
    expect(platform.claims.filter((c) => c.builder === bad.hex).length).toBeGreaterThan(2)
    console.log(`the bad member's claims held the slot until its bound; verified ${Math.round((verifiedAt - bound) / 1000)} s after it (build 6 s)`)
  }, 240_000)
})
