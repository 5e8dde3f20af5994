import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BlobStore } from '../../src/blobs/store.js'
import { runSlot } from '../../src/jobs/service/index.js'
import { foldJob } from '../../src/jobs/state.js'
import { createExecutor, DEFAULT_LIMITS } from '../../src/sandbox/index.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { World } from './helpers.js'

describe('runSlot', () => {
  const teardown = useTeardown()

  it('a builder that cannot get the source releases the slot with a refusal, never a vote on the build', async () => {
    const world = new World()
    const submitter = world.author()
    const jobEntry = submitter.job()
    const job = foldJob(jobEntry, [])
    const home = await tempDir(teardown)
    const blobs = await BlobStore.open({ dir: join(home, 'blobs'), maxBytes: 1 << 20 })
    let asked = 0
    const result = await runSlot({
      job,
      platform: 'linux-x64',
      limits: DEFAULT_LIMITS,
      executor: await createExecutor('none'),
      blobs,
      fetcher: { fetch: async () => { asked++; throw new Error('no peer had it') } },
      sourceHolders: [submitter.key],
      workRoot: join(home, 'work'),
      signal: new AbortController().signal,
      sourceDeadlineMs: 300
    })
    expect(asked).toBeGreaterThan(0)
    expect(result.status).toBe('refused')
    expect(result.reason).toMatch(/^could not get the source [0-9a-f]{12}…: no peer had it/)
    // Published as it is, it is no ballot: with the other replica's pass the job is still pending
    // (not failed, not a mismatch), and the slot wants another builder.
    const builder = world.author()
    const other = world.author()
    const after = foldJob(jobEntry, [builder.write('result', { ...result }), other.result(jobEntry)])
    expect(after.platforms[0]!.verdict).toBe('pending')
    expect(after.platforms[0]!.agreeing).toBe(1)
  })
})
