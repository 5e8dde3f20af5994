import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { foldJob } from '../../src/jobs/state.js'
import { NodeClient } from '../../src/node/cli/client.js'
import { progressLines, watchJob } from '../../src/node/cli/watch.js'
import { useTeardown } from '../helpers/temp-home.js'
import { short } from '../../src/node/cli/job-format.js'
import { World, platforms } from '../jobs/helpers.js'

describe('submit --wait progress', () => {
  it('says a build that failed at once in the order it happened: claim, result, verdict, then the job', () => {
    const world = new World()
    const [submitter, builder] = [world.author(), world.author()]
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    // One read of the job holds all three: the watcher first hears of it once it has failed.
    const view = foldJob(job, [builder.claim(job), builder.result(job, { status: 'fail' })])
    expect(view.verdict).toBe('failed')
    expect(progressLines(view)).toEqual([
      `linux-x64: claimed by ${short(builder.key)}`,
      `linux-x64: ${short(builder.key)} fail in 2.0 s`,
      'linux-x64: FAILED (1/1 agree) — 1 builder agrees: fail (step "test" exited 1)',
      `job ${short(job.id)}: FAILED — linux-x64: 1 builder agrees: fail (step "test" exited 1)`
    ])
  })

  it('interleaves platforms and builders by time, never a result before its own claim, and keeps a reason for waiting last', () => {
    const world = new World()
    const [submitter, a, b] = [world.author(), world.author(), world.author()]
    const job = submitter.job({ platforms: platforms(['linux-x64', 2], ['linux-arm64', 1]) })
    const claimA = a.claim(job)
    const claimB = b.claim(job, 'linux-arm64')
    const resultB = b.result(job, { platform: 'linux-arm64' })
    const resultA = a.result(job)
    // The entries arrive in another order than they were written.
    const lines = progressLines(foldJob(job, [resultA, resultB, claimB, claimA]))
    expect(lines).toEqual([
      `linux-x64: claimed by ${short(a.key)}`,
      `linux-arm64: claimed by ${short(b.key)}`,
      `linux-arm64: ${short(b.key)} pass in 2.0 s`,
      'linux-arm64: verified (1/1 agree)',
      `linux-x64: ${short(a.key)} pass in 2.0 s`,
      // linux-x64 waits for a second builder: its state now comes after everything that happened.
      'linux-x64: 1 of 2 agreeing results'
    ])
  })
})

describe('watching a job', () => {
  const teardown = useTeardown()

  it('misses no verdict that comes between its first read and its event stream: it reads the job once subscribed', async () => {
    // A node whose job is decided at the moment the watcher subscribes, and which sends no event for it afterwards
    // (it came before the subscription): a watcher that read the job before subscribing learns it only from its poll.
    const world = new World()
    const [submitter, builder] = [world.author(), world.author()]
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    const pending = foldJob(job, [])
    const verified = foldJob(job, [builder.claim(job), builder.result(job)])
    expect(verified.verdict).toBe('verified')
    let subscribed = false
    const app = Fastify({ forceCloseConnections: true })
    app.get('/api/jobs/:id', async () => subscribed ? verified : pending)
    app.get('/api/events', async (_request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
      subscribed = true
      reply.raw.write(': buildhaus events\n\n')
    })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    teardown(async () => { await app.close() })

    const watched = await watchJob(new NodeClient(url), job.id, { deadline: Date.now() + 60_000, signal: AbortSignal.timeout(60_000), pollMs: 60_000 })
    expect(watched).toMatchObject({ final: true, job: { verdict: 'verified' } })
  }, 20_000)
})
