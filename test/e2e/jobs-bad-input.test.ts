import { open } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_SOURCE_BYTES } from '../../src/archive/index.js'
import type { NodeProcess } from '../helpers/cluster.js'
import { tempDir } from '../helpers/temp-home.js'
import { apiRequest, isDecided, jobOn, startLabelledCluster, submitCli, submitJob, uploadBlob, useSuiteTeardown, waitForJob } from '../helpers/jobs.js'
import { tempJobDir } from '../helpers/job-dir.js'

const GOOD_SPEC = { name: 'good', platforms: ['lab-a'], replicas: 1, steps: [{ name: 'ok', run: 'true' }], timeout: 30 }

/** A one-line error: what happened and what to do, naming the culprit. */
function oneSentence (stderr: string): string {
  const lines = stderr.trim().split('\n')
  expect(lines).toHaveLength(1)
  return lines[0]!
}

/** Send headers announcing `size` bytes of body, then wait for the node's answer without sending them. */
async function announceUpload (node: NodeProcess, size: number): Promise<{ status: number, body: string }> {
  const url = new URL('/api/blobs', node.apiUrl)
  const authorization = `Bearer ${await node.token()}`
  return await new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), authorization }, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('timeout', () => { req.destroy(new Error('the node did not answer an oversize upload within 10 s')) })
    req.on('error', reject)
    req.flushHeaders()
  })
}

describe('bad input gets a clear error and leaves nothing stuck', () => {
  const teardown = useSuiteTeardown()
  let node: NodeProcess

  beforeAll(async () => {
    [node] = await startLabelledCluster(teardown, [['lab-a']]) as [NodeProcess]
  }, 60_000)

  it('refuses an invalid buildhaus.json with exit 2 and one sentence naming the field', async () => {
    const emptyRun = await tempJobDir(teardown, { ...GOOD_SPEC, steps: [{ name: 'build', run: '' }] })
    const result = await submitCli(node, emptyRun)
    expect(result.code).toBe(2)
    expect(oneSentence(result.stderr)).toContain('steps[0].run')

    const typo = await tempJobDir(teardown, { ...GOOD_SPEC, platfroms: ['lab-a'] })
    const typoResult = await submitCli(node, typo)
    expect(typoResult.code).toBe(2)
    expect(oneSentence(typoResult.stderr)).toContain('unknown field "platfroms"')

    const notJson = await tempJobDir(teardown, '{ "name": "x", ')
    const notJsonResult = await submitCli(node, notJson)
    expect(notJsonResult.code).toBe(2)
    expect(oneSentence(notJsonResult.stderr)).toContain('not valid JSON')
  })

  it('refuses a directory that does not exist, or has no buildhaus.json', async () => {
    const missing = await submitCli(node, '/nonexistent/buildhaus-job')
    expect(missing.code).toBe(2)
    expect(oneSentence(missing.stderr)).toMatch(/\/nonexistent\/buildhaus-job is not a directory; give the directory holding buildhaus\.json/)

    const noSpec = await tempDir(teardown)
    const bare = await submitCli(node, noSpec)
    expect(bare.code).toBe(2)
    expect(oneSentence(bare.stderr)).toContain('there is no buildhaus.json in')
  })

  it('refuses an oversize source before sending it, and the API refuses one that claims to be', async () => {
    // A sparse file: over the bound by size, costing no disk and no time.
    const dir = await tempJobDir(teardown, GOOD_SPEC)
    const big = await open(join(dir, 'big.bin'), 'w')
    await big.truncate(MAX_SOURCE_BYTES + 1)
    await big.close()
    const started = Date.now()
    const result = await submitCli(node, dir)
    expect(result.code).toBe(1)
    expect(oneSentence(result.stderr)).toContain(`over the limit of ${MAX_SOURCE_BYTES} bytes`)
    expect(Date.now() - started).toBeLessThan(10_000)

    // A client that does not check: the node answers 413 from the announced length, reading nothing.
    const answer = await announceUpload(node, MAX_SOURCE_BYTES + 1)
    expect(answer.status).toBe(413)
    expect((JSON.parse(answer.body) as { error: { message: string } }).error.message).toMatch(/\w/)
  })

  it('refuses a job whose source the node lacks with a 409 saying to upload it first', async () => {
    const answer = await apiRequest<{ error: { name: string, message: string } }>(node, 'POST', '/api/jobs', { spec: GOOD_SPEC, source: { hash: 'ab'.repeat(32), size: 10 } })
    expect(answer.status).toBe(409)
    expect(answer.body.error.name).toBe('SourceNotFoundError')
    expect(answer.body.error.message).toContain('upload it first')

    const malformed = await apiRequest<{ error: { message: string } }>(node, 'POST', '/api/jobs', { spec: GOOD_SPEC, source: { hash: 'xyz', size: 1 } })
    expect(malformed.status).toBe(400)
    expect(malformed.body.error.message).toContain('source.hash')

    const badSpec = await apiRequest<{ error: { message: string } }>(node, 'POST', '/api/jobs', { spec: { ...GOOD_SPEC, timeout: -1 }, source: await uploadBlob(node, Buffer.alloc(1024)) })
    expect(badSpec.status).toBe(400)
    expect(badSpec.body.error.message).toContain('timeout')
    expect((await apiRequest(node, 'GET', `/api/jobs/${'ab'.repeat(32)}`)).status).toBe(404)
  })

  it('still builds a good job after all of that', async () => {
    const dir = await tempJobDir(teardown, GOOD_SPEC)
    const job = await submitJob(node, dir)
    const done = await waitForJob(node, job.id, isDecided, 20_000, 'the good job to be built')
    expect(done.verdict).toBe('verified')
    expect((await jobOn(node, job.id))?.verdict).toBe('verified')
  })
})
