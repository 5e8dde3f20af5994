import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { ROOT, runCli, type NodeProcess } from '../helpers/cluster.js'
import { authorOf, isDecided, startLabelledCluster, submitJob, useSuiteTeardown, waitForJob, writeJobDir } from '../helpers/jobs.js'
import { tempDir } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'

const run = promisify(execFile)

/**
 * A verified job as a release: two builders on loopback agree on two files;
 * its provenance is checked by securesystemslib (Debian's, not our code), its
 * artifacts fetched with every hash checked under the user's trust, and the
 * release directory checked offline with `audit` and `verify`. Builders pin
 * what they built.
 */
describe('releases, fetch and provenance', () => {
  const teardown = useSuiteTeardown()
  let nodes: NodeProcess[]
  let job: JobView
  const A = 'alpha\n'
  const B = 'beta\n'

  beforeAll(async () => {
    nodes = await startLabelledCluster(teardown, [['lab-rel'], ['lab-rel']])
    const dir = await writeJobDir(teardown, {
      name: 'two-files',
      platforms: ['lab-rel'],
      replicas: 2,
      steps: [{ name: 'build', run: `mkdir -p out/sub && printf '${A.trim()}\\n' > out/a.txt && printf '${B.trim()}\\n' > out/sub/b.txt` }],
      artifacts: ['out/**'],
      timeout: 60
    })
    const submitted = await submitJob(nodes[0]!, dir)
    job = await waitForJob(nodes[0]!, submitted.id, isDecided, 60_000, 'the job to be decided')
    expect(job.verdict).toBe('verified')
    // Both results (with their signatures) on both nodes.
    await waitForJob(nodes[1]!, job.id, isDecided, 30_000, 'the second node to decide')
  }, 120_000)

  it('attest: one envelope signed by both builders, which securesystemslib verifies at threshold 2', async () => {
    const dir = await tempDir(teardown)
    const file = join(dir, 'job.intoto.jsonl')
    const attest = await runCli(['attest', job.id, '--api', nodes[1]!.apiUrl, '-o', file])
    expect(attest.code, attest.stderr).toBe(0)
    const keys = nodes.map(authorOf)
    const { stdout } = await run('/usr/bin/python3', [join(ROOT, 'test', 'fixtures', 'dsse_verify.py'), file, '2', ...keys])
    const checked = JSON.parse(stdout.trim()) as { valid: string[], subject: Array<{ name: string, digest: { sha256: string } }>, dependencies: Array<{ name: string, digest: Record<string, string> }> }
    expect(checked.valid).toEqual([...keys].sort())
    expect(checked.subject.map((s) => s.name)).toEqual(['out/a.txt', 'out/sub/b.txt'])
    expect(checked.subject.map((s) => s.digest.sha256)).toEqual(job.platforms[0]!.artifacts!.map((a) => a.sha256))
    expect(checked.dependencies[0]).toMatchObject({ name: 'source', digest: { sha256: job.source } })
  })

  it('fetch: writes the verified files (or those under a path) after checking signatures, verdict and hashes', async () => {
    const dir = await tempDir(teardown)
    const all = await runCli(['fetch', '--mesh', testMesh().file, job.id.slice(0, 12), '-o', join(dir, 'all'), '--api', nodes[0]!.apiUrl])
    expect(all.code, all.stderr).toBe(0)
    expect(await readFile(join(dir, 'all', 'out', 'a.txt'), 'utf8')).toBe(A)
    expect(await readFile(join(dir, 'all', 'out', 'sub', 'b.txt'), 'utf8')).toBe(B)
    const one = await runCli(['fetch', '--mesh', testMesh().file, `${job.id}/out/sub/b.txt`, '-o', join(dir, 'one'), '--api', nodes[0]!.apiUrl])
    expect(one.code, one.stderr).toBe(0)
    expect(await readdir(join(dir, 'one', 'out'))).toEqual(['sub'])

    // Under a reader who trusts only one of the two builders and wants two: not verified, nothing written.
    const trust = await tempDir(teardown)
    await writeFile(join(trust, 'one.pub'), `${authorOf(nodes[0]!)}\n`)
    const distrusted = await runCli(['fetch', job.id, '-o', join(dir, 'none'), '--trust', trust, '--quorum', '2', '--api', nodes[0]!.apiUrl])
    expect(distrusted.code).toBe(1)
    expect(distrusted.stderr).toContain('is not verified under your policy')
    expect(existsSync(join(dir, 'none'))).toBe(false)
  })

  it('release: artifacts, provenance and the log slice, checkable offline with audit --slice and verify', async () => {
    const dir = join(await tempDir(teardown), 'release')
    const made = await runCli(['release', '--mesh', testMesh().file, job.id, '-o', dir, '--api', nodes[1]!.apiUrl])
    expect(made.code, made.stderr).toBe(0)
    expect((await readdir(dir)).sort()).toEqual(['SHA256SUMS', 'artifacts', 'log.ndjson', 'provenance.intoto.jsonl', 'release.json'])

    const audit = await runCli(['audit', '--mesh', testMesh().file, '--slice', join(dir, 'log.ndjson'), '--json'])
    expect(audit.code, audit.stdout).toBe(0)
    const report = JSON.parse(audit.stdout) as { log: { valid: boolean }, jobs: Array<{ id: string, verdict: string }> }
    expect(report.jobs).toEqual([expect.objectContaining({ id: job.id, verdict: 'verified' })])

    const verify = await runCli(['verify', '--mesh', testMesh().file, join(dir, 'artifacts', 'out', 'a.txt'), '--log', join(dir, 'log.ndjson'), '--slice', '--job', job.id])
    expect(verify.code, verify.stdout).toBe(0)
    expect(verify.stdout).toContain('VERIFIED')

    const offline = await runCli(['attest', '--mesh', testMesh().file, job.id, '--log', join(dir, 'log.ndjson')])
    expect(offline.code, offline.stderr).toBe(0)
    expect(offline.stdout).toBe(await readFile(join(dir, 'provenance.intoto.jsonl'), 'utf8'))
    expect(await readFile(join(dir, 'SHA256SUMS'), 'utf8')).toContain('  artifacts/out/a.txt')
  })

  it('each builder keeps what it built pinned (outside the cache bound) once the platform is verified', async () => {
    for (const node of nodes) {
      for (const artifact of job.platforms[0]!.artifacts!) {
        await waitFor(() => existsSync(join(node.home, 'blobs', 'pins', artifact.sha256)), { timeoutMs: 10_000, what: `${artifact.path} pinned on ${node.peerId}` })
      }
    }
  })
})
