import { spawn, spawnSync } from 'node:child_process'
import { existsSync, realpathSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { SYSTEM_PATH } from '../../src/sandbox/host.js'
import { waitFor } from '../../src/util/wait.js'
import { BIN, NODE, ROOT, runCli, startNodeProcess } from '../helpers/cluster.js'
import { sortJobDir } from '../helpers/job-dir.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()

interface DemoReport {
  job: JobView
  dashboard: string
  sandbox: 'bubblewrap' | 'none'
  nodes: Array<{ peerId: string, api: string, home: string, listen: string[] }>
}

/** The README's first command ends in `buildhaus-node demo`: it must work on a fresh machine, and end. */
describe('buildhaus-node demo', () => {
  it('starts a local mesh, gets the example job verified by two builders, prints it and exits 0 with --exit', async () => {
    const result = await runCli(['demo', '--exit', '--json'], { timeoutMs: 90_000 })
    expect(result.signal, `the demo did not end by itself; it said:\n${result.stderr.slice(-2000)}`).toBeNull()
    expect(result.code, result.stderr.slice(-2000)).toBe(0)
    const report = JSON.parse(result.stdout) as DemoReport
    expect(report.job.verdict).toBe('verified')
    expect(report.sandbox).toBe('bubblewrap')
    expect(report.nodes).toHaveLength(3)
    const builders = new Set(report.job.platforms.flatMap((p) => p.results.filter((r) => r.status === 'pass').map((r) => r.builder)))
    expect(builders.size).toBe(2)
    expect(report.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
  }, 120_000)
})

/**
 * A machine without bubblewrap, made for this test alone: a private mount
 * namespace in which every bwrap the node could find is covered by /dev/null
 * (not executable). The machine's own bwrap stays where it is for everyone else.
 */
function withoutBubblewrap (): { wrapper: string[] } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'hiding bubblewrap in a private mount namespace needs root (run the suite as root to include it)' }
  if (spawnSync('unshare', ['--version']).status !== 0) return { skip: 'unshare (util-linux) is not installed' }
  const found = [...new Set(SYSTEM_PATH.split(':').map((dir) => `${dir}/bwrap`).filter((path) => existsSync(path)).map((path) => realpathSync(path)))]
  const mounts = found.map((path) => `mount --bind /dev/null '${path}'`).join(' && ')
  const script = `${mounts === '' ? 'true' : mounts} && exec "$@"`
  const wrapper = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh']
  const probe = spawnSync(wrapper[0]!, [...wrapper.slice(1), 'sh', '-c', `for d in ${SYSTEM_PATH.replaceAll(':', ' ')}; do test -x "$d/bwrap" && exit 1; done; exit 0`])
  if (probe.status !== 0) return { skip: `could not hide bubblewrap in a mount namespace here (${probe.stderr.toString().trim() || `exit ${String(probe.status)}`})` }
  return { wrapper }
}

const hidden = withoutBubblewrap()
if ('skip' in hidden) console.warn(`skipping the demo-without-bubblewrap test: ${hidden.skip}`)

describe.skipIf('skip' in hidden)('buildhaus-node demo on a machine without bubblewrap', () => {
  it('builds its own example unsandboxed, saying so loudly, while a stranger\'s job is refused and `join` builds nothing', async () => {
    const { wrapper } = hidden as { wrapper: string[] }
    const child = spawn(wrapper[0]!, [...wrapper.slice(1), NODE, BIN, 'demo', '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const exit = new Promise<number | null>((resolve) => { child.once('close', (code) => { resolve(code) }) })
    teardown(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exit } })

    const report = await waitFor(() => stdout.includes('\n') ? JSON.parse(stdout) as DemoReport : undefined, { timeoutMs: 90_000, intervalMs: 200, what: `the demo's report; it said:\n${stderr.slice(-2000)}` })
    expect(stderr).toContain('WARNING: bubblewrap (bwrap) is not installed, so this demo builds WITHOUT A SANDBOX')
    expect(report.sandbox).toBe('none')
    expect(report.job.verdict).toBe('verified')
    const passes = report.job.platforms.flatMap((p) => p.results.filter((r) => r.status === 'pass'))
    expect(passes).toHaveLength(2)
    for (const result of passes) expect(result.env.sandbox).toBe('none')

    // Its builds could reach the API on loopback: changes need the home's token, even from this machine.
    const api = report.nodes[0]!.api
    const unsigned = await fetch(`${api}/api/jobs/${report.job.id}/rerun`, { method: 'POST' })
    expect(unsigned.status).toBe(403)
    expect(((await unsigned.json()) as { error: { message: string } }).error.message).toMatch(/API token/)

    // A stranger: a real `join`, also without bubblewrap, with its own key, bootstrapping from the demo.
    const stranger = await startNodeProcess(teardown, { wrapper, args: ['--bootstrap', report.nodes[0]!.listen[0]!] })
    expect(stranger.stderr).toMatch(/this node will not build: bubblewrap \(bwrap\) is not installed/)
    expect((await stranger.health()).slots).toBe(0)
    const dir = await sortJobDir(await tempDir(teardown), { name: 'strangers-job', replicas: 2 })
    const submitted = await stranger.submit(dir)
    expect(submitted.submitter).toBe(stranger.ready.author)

    // Each demo node the slot reaches refuses it by its policy; none builds it, and the stranger cannot.
    const demoView = async (): Promise<JobView | undefined> => {
      const response = await fetch(`${api}/api/jobs/${submitted.id}`)
      return response.ok ? await response.json() as JobView : undefined
    }
    const refused = await waitFor(async () => {
      const view = await demoView()
      const refusals = view?.platforms[0]?.results.filter((r) => r.status === 'refused') ?? []
      return refusals.length >= 2 ? view : undefined
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'two demo nodes to refuse the stranger\'s job' })
    const results = refused!.platforms[0]!.results
    const demoKeys = await Promise.all(report.nodes.map(async (n) => ((await (await fetch(`${n.api}/api/health`)).json()) as { author: string }).author))
    for (const result of results) {
      expect(result.status).toBe('refused')
      expect(result.reason).toMatch(/^refused by policy: submitter [0-9a-f]{16}… is not on this node's list$/)
      expect(demoKeys).toContain(result.builder)
    }
    expect(refused!.verdict).not.toBe('verified')

    child.kill('SIGINT')
    expect(await exit).toBe(0)
  }, 180_000)
})
