import { describe, expect, it } from 'vitest'
import { startNodeProcess } from '../helpers/cluster.js'
import { hostilePeer, throwawayAuthor } from '../helpers/hostile-peer.js'
import { jobBody } from '../jobs/helpers.js'
import { useTeardown } from '../helpers/temp-home.js'
import { waitFor } from '../../src/util/wait.js'

/**
 * The hostile peer every test in this folder builds on: the project's own
 * libp2p stack under a fresh key, publishing entries signed by throwaway
 * authors. Here it does what any stranger may: it submits a well-formed job.
 */
describe('a hostile peer from the project stack', () => {
  const teardown = useTeardown()

  it('joins a live node over real libp2p and its correctly signed entries reach the node', async () => {
    const node = await startNodeProcess(teardown, { args: ['--slots', '0'] })
    const peer = await hostilePeer(teardown)
    await peer.connect(node.address)
    const stranger = throwawayAuthor()
    const job = stranger.next({ clock: 1, time: Date.now(), type: 'job', body: jobBody() as unknown as Record<string, unknown> })
    await waitFor(async () => {
      await peer.publishEntry(job)
      const answer = await fetch(new URL(`/api/jobs/${job.id}`, node.apiUrl))
      return answer.ok
    }, { timeoutMs: 15_000, intervalMs: 500, what: 'the node to store the stranger\'s job' })
    const view = await node.api<{ job: { author: string } }>(`/api/jobs/${job.id}`)
    expect(JSON.stringify(view)).toContain(stranger.hex)
  })
})
