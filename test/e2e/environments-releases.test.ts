import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { startNodeProcess, type NodeProcess } from '../helpers/cluster.js'
import { copyExample, environmentsReady, SHARED_ENVIRONMENT_ARGS, skipWithoutDebian } from '../helpers/environments.js'
import { isDecided, submitJob, useSuiteTeardown, waitForJob } from '../helpers/jobs.js'

/**
 * The second and third real workloads, built in three Debian releases by
 * one node that offers them all (examples/python-wheel,
 * python-wheel-reproducible and c-release-differs): the verdicts say which
 * packages differ where the bytes differ, and cross-verify what is the same.
 */

const skip = await skipWithoutDebian('the Debian release workloads')
const RELEASES = ['debian-11', 'debian-12', 'debian-13']

/** Every platform decided, and (for a cross-platform mismatch, which decides the job as soon as two platforms differ) diagnosed. */
const settled = (job: JobView): boolean => isDecided(job) && job.platforms.every((p) => p.verdict !== 'pending') &&
  (job.crossPlatform.verdict !== 'mismatch' || job.diagnoses.some((d) => d.versus !== undefined))

describe.skipIf(skip)('one project built in debian-11, debian-12 and debian-13', () => {
  const teardown = useSuiteTeardown()
  let node: NodeProcess

  beforeAll(async () => {
    node = await startNodeProcess(teardown, { readyTimeoutMs: 120_000, args: [...RELEASES.flatMap((r) => ['--environment', r]), ...SHARED_ENVIRONMENT_ARGS, '--slots', '2', '--platform', 'linux-x64'] })
    await environmentsReady(node, RELEASES, 25 * 60_000)
  }, 30 * 60_000)

  it('a setuptools wheel differs between the releases, and the verdict names the packages that differ', async () => {
    const submitted = await submitJob(node, await copyExample(teardown, 'python-wheel'))
    const job = await waitForJob(node, submitted.id, settled, 20 * 60_000, 'a verdict on the wheel')
    expect(job.platforms.map((p) => [p.environment, p.verdict])).toEqual(RELEASES.map((r) => [r, 'verified']))
    expect(job.crossPlatform.verdict).toBe('mismatch')
    expect(job.verdict).toBe('mismatch')
    // The reason names the job's packages whose versions differ, release by release.
    expect(job.reason).toMatch(/dist\/greet-1\.0-py3-none-any\.whl differs across platforms/)
    expect(job.reason).toMatch(/environments differ: python3-setuptools \S+ vs \S+ vs \S+, python3-wheel \S+ vs \S+ vs \S+/)
    const versions = job.platforms.map((p) => p.results[0]!.environment!.packages['python3-wheel'])
    expect(new Set(versions).size).toBe(3)
    const diagnosis = job.diagnoses.find((d) => d.versus !== undefined)!
    expect(diagnosis.summary).toMatch(/^environments differ in \d+ packages: /)
  }, 25 * 60_000)

  it('an in-tree backend makes the same wheel bytes in all three: cross-verified', async () => {
    const submitted = await submitJob(node, await copyExample(teardown, 'python-wheel-reproducible'))
    const job = await waitForJob(node, submitted.id, isDecided, 20 * 60_000, 'a verdict on the reproducible wheel')
    expect(job.verdict, job.reason).toBe('verified')
    expect(job.crossPlatform.verdict).toBe('agree')
    const wheel = job.crossPlatform.files.find((f) => f.path === 'dist/greet-1.0-py3-none-any.whl')!
    expect(Object.keys(wheel.hashes).length).toBe(3)
    expect(new Set(Object.values(wheel.hashes)).size).toBe(1)
    // The same environments as the wheel that differed: the backend made the difference.
    const manifests = job.platforms.map((p) => p.results[0]!.environment!.manifest)
    expect(new Set(manifests).size).toBe(3)
    // Built under the system call filter, and the results say so (docs/SANDBOX.md, "The system call filter").
    for (const platform of job.platforms) expect(platform.results[0]!.env.tools.seccomp).toMatch(/^buildhaus-1 (x86_64|aarch64)$/)
  }, 25 * 60_000)

  it('a C program prints what it was built with, and the diagnosis says the environments differ and lists the packages', async () => {
    const submitted = await submitJob(node, await copyExample(teardown, 'c-release-differs'))
    const job = await waitForJob(node, submitted.id, settled, 20 * 60_000, 'a verdict on the C program')
    expect(job.platforms.map((p) => p.verdict)).toEqual(['verified', 'verified'])
    expect(job.verdict).toBe('mismatch')
    expect(job.reason).toMatch(/output\.txt differs across platforms: .*; environments differ: gcc \S+ vs \S+, libc6-dev \S+ vs \S+/)
    const diagnosis = job.diagnoses.find((d) => d.versus !== undefined)!
    expect(diagnosis.platform).not.toBe(diagnosis.versus)
    expect(diagnosis.summary).toMatch(/^environments differ in \d+ packages: gcc \S+ vs \S+/)
    expect(diagnosis.summary).toContain('output.txt')
    // The report lists every package that differs, from both manifests in full.
    const report = await (await fetch(new URL(`/api/blobs/${diagnosis.report}`, node.apiUrl))).text()
    expect(report).toMatch(/^ {2}\d+ packages differ \(A vs B\):$/m)
    expect(report).toMatch(/^ {2}libc6: \S+ {2}vs {2}\S+$/m)
    expect(report).toContain('compiled by gcc')
  }, 25 * 60_000)
})
