import { describe, expect, it } from 'vitest'
import { startCluster, waitForMesh, waitForVerdicts } from '../helpers/cluster.js'
import { describeJob, writeJobDir } from '../helpers/jobs.js'
import { useTeardown } from '../helpers/temp-home.js'

/**
 * Issue 12, attack 4: a job that makes its own result unsignable (a file
 * named `a\nb` under the glob `*`; 256 artifacts with 300-character paths,
 * more than the 64 KiB an entry may hold) used to be built forever: the
 * result failed to sign, the failure was only logged, the claim lapsed and
 * the job was claimed again (9 claims, 0 results in 121 s). Now each builder
 * publishes an `error` result that says why, once, and the job is decided.
 */
describe('a job that makes its result unpublishable (2 node processes, real bubblewrap)', () => {
  const teardown = useTeardown()

  it('ends with one error result per builder saying why, no host paths, and no re-claims', async () => {
    const nodes = await startCluster(teardown, { size: 2, args: ['--slots', '1'] })
    await waitForMesh(nodes)
    const dir150 = `d${'x'.repeat(149)}`
    const newline = await writeJobDir(teardown, {
      name: 'newline-artifact',
      platforms: ['linux-x64'],
      replicas: 2,
      steps: [{ name: 'build', run: 'printf x > "$(printf \'a\\nb\')"' }],
      artifacts: ['*'],
      timeout: 60
    })
    const huge = await writeJobDir(teardown, {
      name: 'too-many-long-paths',
      platforms: ['linux-x64'],
      replicas: 2,
      // 256 files whose paths are 300 characters each (a 150-character directory, a 145-character name after the number).
      steps: [{ name: 'build', run: `mkdir -p ${dir150} && for i in $(seq 0 255); do printf "$i" > ${dir150}/$(printf %03d $i)-${'y'.repeat(145)}; done` }],
      artifacts: ['d*/*'],
      timeout: 60
    })
    const jobs = [await nodes[0]!.submit(newline), await nodes[1]!.submit(huge)]
    const verdicts = await waitForVerdicts(nodes, jobs.map((j) => j.id), { timeoutMs: 120_000 })
    for (const job of jobs) expect(verdicts[job.id]).toBe('failed')

    const [first, second] = await Promise.all(jobs.map(async (j) => await nodes[0]!.job(j.id)))
    const reasons = [first!, second!].map((view) => view.platforms[0]!.results.map((r) => `${r.status}: ${r.reason ?? ''}`))
    for (const r of reasons[0]!) expect(r).toMatch(/^error: the result could not be published: artifacts\[\d+\]\.path must not contain control characters \(the artifact "a\\nb"\)$/)
    for (const r of reasons[1]!) expect(r).toMatch(/^error: the result could not be published: its entry would be \d+ bytes, over the 65536-byte limit of a log entry \(256 artifacts, paths up to 300 characters\); collect fewer files or shorter paths$/)
    for (const view of [first!, second!]) {
      const platform = view.platforms[0]!
      // One claim and one result per builder: nobody built it again.
      expect(platform.claims.map((c) => c.builder).sort(), describeJob(view)).toEqual(platform.results.map((r) => r.builder).sort())
      expect(new Set(platform.claims.map((c) => c.builder)).size).toBe(platform.claims.length)
      for (const r of platform.results) expect(r.reason).not.toMatch(/\/tmp\/|\/home\/|buildhaus-node-/)
    }
    console.log(`unpublishable results: ${reasons.flat().length} error results, ${first!.platforms[0]!.claims.length + second!.platforms[0]!.claims.length} claims`)
  }, 180_000)
})
