import { describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { runCli } from '../helpers/cluster.js'

/** The README's first command ends in `buildhaus-node demo`: it must work on a fresh machine, and end. */
describe('buildhaus-node demo', () => {
  it('starts a local mesh, gets the example job verified by two builders, prints it and exits 0 with --exit', async () => {
    const result = await runCli(['demo', '--exit', '--json'], { timeoutMs: 90_000 })
    expect(result.signal, `the demo did not end by itself; it said:\n${result.stderr.slice(-2000)}`).toBeNull()
    expect(result.code, result.stderr.slice(-2000)).toBe(0)
    const report = JSON.parse(result.stdout) as { job: JobView, dashboard: string, nodes: Array<{ peerId: string, api: string }> }
    expect(report.job.verdict).toBe('verified')
    expect(report.nodes).toHaveLength(3)
    const builders = new Set(report.job.platforms.flatMap((p) => p.results.filter((r) => r.status === 'pass').map((r) => r.builder)))
    expect(builders.size).toBe(2)
    expect(report.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
  }, 120_000)
})
