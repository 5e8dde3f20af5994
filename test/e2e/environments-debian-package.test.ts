import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { runCli, startNodeProcess, type NodeProcess } from '../helpers/cluster.js'
import { copyExample, environmentsReady, SHARED_ENVIRONMENT_ARGS, skipWithoutDebian } from '../helpers/environments.js'
import { authorOf, buildersOf, isDecided, meshFormed, submitJob, useSuiteTeardown, waitForJob } from '../helpers/jobs.js'

/**
 * The first real workload (examples/debian-hello): Debian's own GNU hello
 * source package, built with `dpkg-buildpackage -us -uc -b` in `debian-12`
 * with its build dependencies, by two `join` processes, and verified: the
 * two .deb files are byte-identical. Both nodes keep their environments in
 * the test store, so the environment and its derived copy are made once.
 */

const skip = await skipWithoutDebian('the Debian package workload')

describe.skipIf(skip)('Debian\'s hello, built by two nodes in debian-12', () => {
  const teardown = useSuiteTeardown()
  let nodes: NodeProcess[]
  let job: JobView

  beforeAll(async () => {
    const args = ['--environment', 'debian-12', ...SHARED_ENVIRONMENT_ARGS, '--slots', '1', '--platform', 'linux-x64']
    const first = await startNodeProcess(teardown, { readyTimeoutMs: 120_000, args })
    const second = await startNodeProcess(teardown, { readyTimeoutMs: 120_000, args: [...args, '--bootstrap', first.address] })
    nodes = [first, second]
    await meshFormed(nodes)
    for (const node of nodes) await environmentsReady(node, ['debian-12'], 20 * 60_000)
  }, 25 * 60_000)

  it('verifies: both builders report the same .deb hashes, built in the same environment, whose manifest anyone can fetch', async () => {
    const dir = await copyExample(teardown, 'debian-hello')
    execFileSync('sh', ['get-source.sh', dir], { cwd: dir, stdio: 'pipe', timeout: 120_000 })
    const submitted = await submitJob(nodes[0]!, dir)
    expect(submitted.platforms.map((p) => [p.selector, p.environment])).toEqual([['debian-12+linux-x64', 'debian-12']])
    job = await waitForJob(nodes[0]!, submitted.id, isDecided, 40 * 60_000, 'a verdict on hello')
    const platform = job.platforms[0]!
    const results = platform.results.filter((r) => r.status !== 'refused')
    expect(job.verdict, JSON.stringify(platform.results.map((r) => [r.status, r.reason]))).toBe('verified')
    expect(new Set(buildersOf(job, platform.selector))).toEqual(new Set(nodes.map(authorOf)))
    const debs = platform.artifacts!.filter((a) => a.path.endsWith('.deb')).map((a) => a.path)
    expect(debs).toContain('hello_2.10-3_amd64.deb')
    for (const r of results) expect(r.artifacts).toEqual(platform.artifacts)

    // Every result records the environment it was built in: the same manifest on both, with the packages asked for.
    const environment = results[0]!.environment!
    expect(environment.name).toBe('debian-12')
    for (const r of results) expect(r.environment).toEqual(environment)
    expect(Object.keys(environment.packages)).toEqual(expect.arrayContaining(['build-essential', 'debhelper', 'help2man', 'texinfo', 'libc6', 'gcc', 'dpkg-dev']))
    const manifest = await fetch(new URL(`/api/blobs/${environment.manifest}`, nodes[1]!.apiUrl))
    const bytes = Buffer.from(await manifest.arrayBuffer())
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(environment.manifest)
    const parsed = JSON.parse(bytes.toString('utf8')) as { name: string, requested: string[], packages: string[] }
    expect(parsed.requested).toEqual(['build-essential', 'debhelper', 'help2man', 'texinfo'])
    expect(parsed.packages).toContain(`debhelper (= ${environment.packages.debhelper!})`)
  }, 45 * 60_000)

  it('shows each builder\'s environment in `status`', async () => {
    const status = await runCli(['status', job.id, '--api', nodes[1]!.apiUrl])
    expect(status.code, status.stderr).toBe(0)
    expect(status.stdout).toContain('in environment debian-12 + build-essential, debhelper, help2man, texinfo')
    expect(status.stdout).toContain(`environment debian-12 ${job.platforms[0]!.results[0]!.environment!.manifest}`)
  })
})
