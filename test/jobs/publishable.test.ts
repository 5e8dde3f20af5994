import { describe, expect, it } from 'vitest'
import { MAX_ENTRY_BYTES } from '../../src/ledger/constants.js'
import { publishableResult, resultEntryBytes, unpublishableReason } from '../../src/jobs/service/publishable.js'
import { withoutHostPaths } from '../../src/jobs/service/runner.js'
import { codec, resultBody, sha, World } from './helpers.js'

describe('a result is always publishable (issue 12, attack 4)', () => {
  it('leaves a good result alone, and knows the most its entry can weigh', () => {
    const world = new World()
    const author = world.author()
    const job = author.job()
    const body = resultBody(job.id)
    expect(publishableResult(body)).toBe(body)
    expect(resultEntryBytes(body)).toBeGreaterThanOrEqual(Buffer.byteLength(author.result(job).line))
  })

  it('a file named "a\\nb": an error result that names it, escaped, and publishes', () => {
    const world = new World()
    const author = world.author()
    const job = author.job()
    const body = resultBody(job.id, { artifacts: [{ path: 'a\nb', sha256: sha('x'), size: 1 }] })
    expect(unpublishableReason(body)).toBe('the result could not be published: artifacts[0].path must not contain control characters (the artifact "a\\nb")')
    const fixed = publishableResult(body)
    expect(fixed).toMatchObject({ status: 'error', artifacts: [], steps: body.steps, log: body.log })
    expect(() => author.write('result', fixed)).not.toThrow()
  })

  it('256 artifacts with 300-character paths (more than an entry holds): an error result that says so', () => {
    const world = new World()
    const author = world.author()
    const job = author.job()
    const artifacts = Array.from({ length: 256 }, (_, i) => ({ path: `${String(i).padStart(3, '0')}-${'p'.repeat(296)}`, sha256: sha(String(i)), size: 1 }))
    const body = resultBody(job.id, { artifacts })
    const bytes = resultEntryBytes(body)
    expect(bytes).toBeGreaterThan(MAX_ENTRY_BYTES)
    expect(() => codec.create({ publicHex: author.key, sign: () => new Uint8Array(64) } as never, { seq: 0, prev: null, clock: 0, time: 0, type: 'result', body })).toThrow(/limit is 65536/)
    expect(unpublishableReason(body)).toBe(`the result could not be published: its entry would be ${bytes} bytes, over the ${MAX_ENTRY_BYTES}-byte limit of a log entry (256 artifacts, paths up to 300 characters); collect fewer files or shorter paths`)
    expect(() => author.write('result', publishableResult(body))).not.toThrow()
  })

  it('drops the steps and environment when they are what cannot be published', () => {
    const world = new World()
    const author = world.author()
    const job = author.job()
    const body = resultBody(job.id, { steps: [{ name: 'bad\nstep', exit: 0, ms: 1 }] })
    const fixed = publishableResult(body)
    expect(fixed).toMatchObject({ status: 'error', steps: [], log: null, artifacts: [] })
    expect(fixed.reason).toMatch(/^the result could not be published: steps\[0\]\.name must not contain control characters/)
    expect(() => author.write('result', fixed)).not.toThrow()
  })

  it('never puts the volunteer\'s workspace path into a reason', () => {
    expect(withoutHostPaths('the sandbox failed: ENAMETOOLONG: name too long, lstat \'/home/v/.local/share/buildhaus/work/ws-1/a/b\'', '/home/v/.local/share/buildhaus/work'))
      .toBe('the sandbox failed: ENAMETOOLONG: name too long, lstat \'<workspace>/ws-1/a/b\'')
  })
})
