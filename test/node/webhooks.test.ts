import { createHmac } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_QUEUED_DELIVERIES, WebhookSender, type Webhook } from '../../src/node/webhooks.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess } from '../helpers/cluster.js'
import { submitJob, writeJobDir } from '../helpers/jobs.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

interface Received { path: string, headers: IncomingMessage['headers'], body: string }

/**
 * Webhooks against a real HTTP receiver on loopback: signatures checked with
 * node:crypto's HMAC (not our signing code), retries with back-off, the
 * bounded queue, and a node posting a verdict end to end.
 */
describe('webhooks', () => {
  const teardown = useTeardown()
  let server: Server
  let base = ''
  const received: Received[] = []
  /** Status answered per path, in turn (then 200). */
  const script = new Map<string, number[]>()

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
        received.push({ path: req.url ?? '', headers: req.headers, body })
        res.statusCode = script.get(req.url ?? '')?.shift() ?? 200
        res.end('ok')
      })
    })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => { await new Promise((resolve) => server.close(resolve)) })

  const hook = (path: string, secret = 'a-secret-of-16-chars'): Webhook => ({ url: `${base}${path}`, secret, scope: 'all' })
  const at = (path: string): Received[] => received.filter((r) => r.path === path)
  const hmac = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

  it('retries 5xx answers with back-off, the same delivery id and a valid signature each time', async () => {
    script.set('/flaky', [503, 500])
    const sender = new WebhookSender({ backoffMs: 50 })
    sender.start()
    teardown(() => { sender.stop() })
    sender.send(hook('/flaky'), { delivery: 'd-1', event: 'verdict' } as never)
    await waitFor(() => sender.stats().delivered === 1, { timeoutMs: 5_000, what: 'the delivery to succeed on its third attempt' })
    const attempts = at('/flaky')
    expect(attempts).toHaveLength(3)
    for (const a of attempts) {
      expect(a.headers['x-buildhaus-delivery']).toBe('d-1')
      expect(a.headers['content-type']).toBe('application/json')
      expect(a.headers['x-buildhaus-signature-256']).toBe(hmac('a-secret-of-16-chars', a.body))
    }
    expect(sender.stats()).toMatchObject({ retries: 2, failed: 0, queued: 0 })
  })

  it('a 4xx answer is final: no retry', async () => {
    script.set('/refuses', [410])
    const sender = new WebhookSender({ backoffMs: 50 })
    sender.start()
    teardown(() => { sender.stop() })
    sender.send(hook('/refuses'), { delivery: 'd-2' })
    await waitFor(() => sender.stats().failed === 1, { timeoutMs: 5_000, what: 'the delivery to fail' })
    expect(at('/refuses')).toHaveLength(1)
  })

  it('the queue is bounded: the oldest deliveries are dropped and counted', () => {
    const sender = new WebhookSender()
    for (let i = 0; i < MAX_QUEUED_DELIVERIES + 5; i++) sender.send(hook('/never'), { delivery: `q-${i}` })
    expect(sender.stats()).toMatchObject({ dropped: 5, queued: MAX_QUEUED_DELIVERIES })
  })

  it('a node posts the verdict of a job it submitted to the hook added with `webhook add`, signed with the hook\'s secret', async () => {
    const home = await tempDir(teardown, 'buildhaus-hooked-')
    const added = await runCli(['webhook', 'add', `${base}/verdicts`, '--home', home, '--json'])
    expect(added.code, added.stderr).toBe(0)
    const { secret } = JSON.parse(added.stdout) as { secret: string }
    expect(secret).toMatch(/^[0-9a-f]{64}$/)
    const listed = await runCli(['webhook', 'list', '--home', home])
    expect(listed.stdout).toContain(`${base}/verdicts  scope mine`)
    expect(listed.stdout).not.toContain(secret)

    const node = await startNodeProcess(teardown, { home, args: ['--platform', 'lab-hook', '--slots', '1'] })
    const dir = await writeJobDir(teardown, { name: 'hooked', platforms: ['lab-hook'], replicas: 1, steps: [{ name: 'build', run: 'mkdir -p out && echo hi > out/hi.txt' }], artifacts: ['out/*'], timeout: 30 })
    const job = await submitJob(node, dir)
    await waitFor(() => at('/verdicts').length > 0, { timeoutMs: 30_000, intervalMs: 100, what: 'the verdict to be posted' })
    const [post] = at('/verdicts')
    expect(post!.headers['x-buildhaus-event']).toBe('verdict')
    expect(post!.headers['x-buildhaus-signature-256']).toBe(hmac(secret, post!.body))
    const payload = JSON.parse(post!.body) as { event: string, delivery: string, job: { id: string, verdict: string, platforms: Array<{ selector: string, artifacts: Array<{ path: string, sha256: string }> }> }, node: { author: string } }
    expect(payload).toMatchObject({ event: 'verdict', job: { id: job.id, verdict: 'verified' }, node: { author: node.ready.author } })
    expect(payload.job.platforms[0]!.artifacts.map((a) => a.path)).toEqual(['out/hi.txt'])

    const removed = await runCli(['webhook', 'remove', `${base}/verdicts`, '--home', home])
    expect(removed.code).toBe(0)
    expect((await runCli(['webhook', 'list', '--home', home])).stdout).toContain('no webhooks')
  }, 180_000)
})
