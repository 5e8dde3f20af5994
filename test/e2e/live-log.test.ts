import { spawn } from 'node:child_process'
import { beforeAll, describe, expect, it } from 'vitest'
import { BIN, NODE, ROOT, type NodeProcess } from '../helpers/cluster.js'
import { authorOf, jobOn, startLabelledCluster, submitJob, useSuiteTeardown, writeJobDir } from '../helpers/jobs.js'
import { waitFor } from '../../src/util/wait.js'

/**
 * A build's log, live: a builder (lab-live) runs a step that prints a line a
 * second; another node, which builds nothing, follows it over the mesh and
 * serves it on GET /api/jobs/:id/live and to `status --follow`.
 */
describe('live logs through the mesh', () => {
  const teardown = useSuiteTeardown()
  let builder: NodeProcess
  let viewer: NodeProcess

  beforeAll(async () => {
    ;[builder, viewer] = await startLabelledCluster(teardown, [['lab-live'], ['lab-none']])
  }, 90_000)

  it('streams each line to another node\'s API while the build runs, and `status --follow` prints them until the verdict', async () => {
    const dir = await writeJobDir(teardown, {
      name: 'slow-printer',
      platforms: ['lab-live'],
      replicas: 1,
      steps: [{ name: 'print', run: 'for i in 1 2 3 4 5; do echo "line $i"; sleep 0.7; done' }],
      timeout: 60
    })
    const job = await submitJob(viewer, dir)

    // `status --follow` on the viewer, as a user would run it.
    const follow = spawn(NODE, [BIN, 'status', job.id, '--follow', '--api', viewer.apiUrl], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let followed = ''
    follow.stdout.setEncoding('utf8').on('data', (chunk: string) => { followed += chunk })
    const exited = new Promise<number | null>((resolve) => { follow.once('close', (code) => { resolve(code) }) })
    teardown(() => { follow.kill('SIGKILL') })

    // The raw stream: the first line arrives while the build is still running.
    const response = await fetch(new URL(`/api/jobs/${job.id}/live`, viewer.apiUrl), { signal: AbortSignal.timeout(60_000) })
    expect(response.headers.get('content-type')).toContain('text/event-stream')
    const reader = response.body!.getReader()
    let raw = ''
    let pendingWhenFirstLine: string | undefined
    while (!raw.includes('event: done')) {
      const { done, value } = await reader.read()
      if (done) break
      raw += new TextDecoder().decode(value)
      if (pendingWhenFirstLine === undefined && raw.includes('line 1')) pendingWhenFirstLine = (await jobOn(viewer, job.id))!.verdict
    }
    expect(pendingWhenFirstLine).toBe('pending')
    expect(raw).toContain(`"builder":"${authorOf(builder)}"`)
    expect(raw).toContain('event: end')
    const text = [...raw.matchAll(/"text":("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]!) as string).join('')
    expect(text).toMatch(/line 1\n[\s\S]*line 2\n[\s\S]*line 3\n[\s\S]*line 4\n[\s\S]*line 5\n/)

    expect(await exited).toBe(0)
    const prefix = `lab-live ${authorOf(builder).slice(0, 12)} | `
    for (let i = 1; i <= 5; i++) expect(followed).toContain(`${prefix}line ${i}\n`)
    expect(followed.indexOf(`${prefix}line 1`)).toBeLessThan(followed.indexOf(`${prefix}line 5`))
    expect(followed).toContain('verified')
  })

  it('a job nobody runs answers at once with its state, and an unknown job is 404', async () => {
    const unknown = await fetch(new URL(`/api/jobs/${'f'.repeat(64)}/live`, viewer.apiUrl))
    expect(unknown.status).toBe(404)
    const dir = await writeJobDir(teardown, { name: 'quick', platforms: ['lab-live'], replicas: 1, steps: [{ name: 'build', run: 'echo quick' }], timeout: 30 })
    const job = await submitJob(viewer, dir)
    await waitFor(async () => (await jobOn(viewer, job.id))?.verdict === 'verified', { timeoutMs: 30_000, intervalMs: 100, what: 'the quick job to be verified' })
    // Decided and nothing running: the stream says `done` and closes.
    const body = await (await fetch(new URL(`/api/jobs/${job.id}/live`, viewer.apiUrl), { signal: AbortSignal.timeout(10_000) })).text()
    expect(body).toContain('event: done')
  })
})
