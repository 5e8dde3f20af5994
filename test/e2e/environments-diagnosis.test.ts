import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess, type NodeProcess, waitForMesh } from '../helpers/cluster.js'
import { advertisedEnvironments, environmentsReady, SHARED_ENVIRONMENT_ARGS, skipWithoutDebian } from '../helpers/environments.js'
import { authorOf, isDecided, submitJob, useSuiteTeardown, waitForJob } from '../helpers/jobs.js'
import { hostShellEntries, writeOciArchive } from '../helpers/oci-image.js'
import { tempDir } from '../helpers/temp-home.js'
import { tempJobDir } from '../helpers/job-dir.js'

/**
 * Verdicts that explain themselves, on a mesh of three `join` processes:
 * A and C have the real debian-12 (the test store), B an image imported
 * under the same name (`env import`), so a job that A and B build
 * disagrees because their environments differ — and the verdict and the
 * diagnosis name the packages — while one that A and C build in the very
 * same environment disagrees because the build is not deterministic.
 * Labels steer each job to its pair: A offers lab-diff and lab-same, B
 * lab-diff, C lab-same.
 */

const skip = await skipWithoutDebian('the environment diagnosis tests')

const diagnosed = (job: JobView): boolean => isDecided(job) && job.diagnoses.length > 0

describe.skipIf(skip)('diagnosing builders whose environments differ, or not', () => {
  const teardown = useSuiteTeardown()
  let a: NodeProcess, b: NodeProcess, c: NodeProcess

  beforeAll(async () => {
    // B's debian-12 is a tiny image of the host's /bin/sh, imported with the CLI into its own store.
    const bStore = await tempDir(teardown, 'buildhaus-envs-b-')
    const image = join(await tempDir(teardown), 'tiny.tar')
    await writeOciArchive(image, [{ entries: [...hostShellEntries(), { type: 'directory', name: 'etc/' }, { type: 'file', name: 'etc/os-release', content: 'NAME="Tiny"\n' }] }])
    const imported = await runCli(['env', 'import', 'debian-12', image, '--environment-dir', bStore, '--json'], { timeoutMs: 120_000 })
    expect(imported.code, imported.stderr).toBe(0)
    expect(JSON.parse(imported.stdout)).toMatchObject({ name: 'debian-12', named: true, manifest: { origin: 'oci' } })

    a = await startNodeProcess(teardown, { readyTimeoutMs: 120_000, args: ['--environment', 'debian-12', ...SHARED_ENVIRONMENT_ARGS, '--platform', 'lab-diff', '--platform', 'lab-same', '--slots', '1'] })
    b = await startNodeProcess(teardown, { readyTimeoutMs: 120_000, args: ['--environment', 'debian-12', '--environment-dir', bStore, '--platform', 'lab-diff', '--slots', '1', '--bootstrap', a.address] })
    c = await startNodeProcess(teardown, { readyTimeoutMs: 120_000, args: ['--environment', 'debian-12', ...SHARED_ENVIRONMENT_ARGS, '--platform', 'lab-same', '--slots', '1', '--bootstrap', a.address] })
    await waitForMesh([a, b, c])
    for (const node of [a, b, c]) await environmentsReady(node, ['debian-12'], 20 * 60_000)
    // Heartbeats carry each node's ready environments to the others.
    await waitFor(async () => {
      const heard = await advertisedEnvironments(c)
      return [a, b, c].every((n) => heard.get(authorOf(n))?.includes('debian-12') === true)
    }, { timeoutMs: 20_000, what: 'every node to advertise debian-12' })
  }, 25 * 60_000)

  it('names the package differences when the builders\' environments differ', async () => {
    const dir = await tempJobDir(teardown, {
      name: 'which-system',
      platforms: ['lab-diff'],
      environment: 'debian-12',
      replicas: 2,
      steps: [{ name: 'look', run: 'while read l; do echo "$l"; done < /etc/os-release > out.txt' }],
      artifacts: ['out.txt'],
      timeout: 120
    })
    const submitted = await submitJob(a, dir)
    const job = await waitForJob(a, submitted.id, diagnosed, 5 * 60_000, 'a diagnosed mismatch')
    expect(job.verdict).toBe('mismatch')
    const platform = job.platforms[0]!
    expect(new Set(platform.results.map((r) => r.builder))).toEqual(new Set([authorOf(a), authorOf(b)]))
    expect(platform.reason).toMatch(/builders disagree on out\.txt; environments differ: libc6 \S+ vs \(none\)|environments differ: libc6 \(none\) vs \S+/)
    expect(job.diagnoses[0]!.summary).toMatch(/^environments differ in \d+ packages: .*; out\.txt: /)
  }, 10 * 60_000)

  it('says the build is not deterministic when the environments are the same, and keeps the file diff', async () => {
    const dir = await tempJobDir(teardown, {
      name: 'random-output',
      platforms: ['lab-same'],
      environment: 'debian-12',
      replicas: 2,
      steps: [{ name: 'roll', run: 'cat /proc/sys/kernel/random/uuid > out.txt' }],
      artifacts: ['out.txt'],
      timeout: 120
    })
    const submitted = await submitJob(c, dir)
    const job = await waitForJob(c, submitted.id, diagnosed, 5 * 60_000, 'a diagnosed mismatch')
    expect(job.verdict).toBe('mismatch')
    expect(new Set(job.platforms[0]!.results.map((r) => r.builder))).toEqual(new Set([authorOf(a), authorOf(c)]))
    expect(job.platforms[0]!.reason).toMatch(/every side had the same environment \(debian-12 [0-9a-f]{12}\): the build is not deterministic/)
    const diagnosis = job.diagnoses[0]!
    expect(diagnosis.summary).toMatch(/^the same environment on both sides \(debian-12 [0-9a-f]{12}\): the build is not deterministic; out\.txt: /)
    const report = await (await fetch(new URL(`/api/blobs/${diagnosis.report}`, c.apiUrl))).text()
    expect(report).toContain('identical: the difference below comes from the build itself')
  }, 10 * 60_000)

  it('says why a job waits: no live node offers the environment it names', async () => {
    const dir = await tempJobDir(teardown, { name: 'nobody-has-it', platforms: ['lab-same'], environment: 'debian-13', replicas: 1, steps: [{ name: 'x', run: 'true' }], timeout: 60 })
    const submitted = await submitJob(c, dir)
    const job = await waitForJob(c, submitted.id, (j) => j.verdict === 'unmatched', 30_000, 'the job to be unmatched')
    expect(job.platforms[0]!.reason).toBe('unmatched: no live node offers the environment debian-13 on lab-same')
  })

  it('refuses unknown packages, saying so, and never counts it as a failed build', async () => {
    const dir = await tempJobDir(teardown, {
      name: 'unknown-package',
      platforms: ['lab-same'],
      environment: 'debian-12',
      packages: ['buildhaus-no-such-package'],
      replicas: 1,
      steps: [{ name: 'x', run: 'true' }],
      timeout: 60
    })
    const submitted = await submitJob(c, dir)
    const job = await waitForJob(c, submitted.id, (j) => j.verdict === 'unmatched' && j.platforms[0]!.results.length === 2, 10 * 60_000, 'both lab-same builders to refuse')
    const platform = job.platforms[0]!
    expect(platform.results.map((r) => r.status)).toEqual(['refused', 'refused'])
    for (const r of platform.results) expect(r.reason).toMatch(/^could not prepare the environment debian-12 \+ buildhaus-no-such-package: the package buildhaus-no-such-package is not in debian-12's archive/)
    expect(platform.reason).toMatch(/^refused: could not prepare the environment debian-12 \+ buildhaus-no-such-package/)
    // Every node comes to the same verdict once the refusals reach it (gossip: not at the same instant).
    await waitForJob(a, submitted.id, (j) => j.verdict === 'unmatched', 60_000, 'the first node to see the job unmatched too')
  }, 12 * 60_000)
})
