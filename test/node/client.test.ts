import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { NodeClient, parseApiUrl } from '../../src/node/cli/client.js'
import { useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/** A small HTTP server standing in for later routes (streams, posts) the client must already handle. */
async function server (teardown: Teardown): Promise<string> {
  const app = Fastify({ forceCloseConnections: true })
  app.get('/lines', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' })
    reply.raw.write('{"n":1}\n{"n"')
    setTimeout(() => { reply.raw.end(':2}\n{"n":3}') }, 20)
    return await reply
  })
  app.post('/echo', async (request) => ({ got: request.body, auth: request.headers.authorization ?? null }))
  app.get('/refuse', async (_request, reply) => await reply.status(409).send({ error: { name: 'JobExists', message: 'that job was already submitted; watch it with `buildhaus-node status`' } }))
  app.get('/html', async (_request, reply) => await reply.type('text/html').send('<html>not an API</html>'))
  app.get('/slow', async () => await new Promise((resolve) => setTimeout(() => { resolve({ late: true }) }, 2_000)))
  app.get('/huge', async () => ({ blob: 'x'.repeat(4096) }))
  // An event stream that says one thing and then nothing (a node with no news).
  app.get('/quiet', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.write(': hello\n')
    return await reply
  })
  app.get('/moved', async (_request, reply) => await reply.redirect('/huge'))
  // Promises 1,000 bytes, sends 10 and hangs up: a node that crashed mid-answer.
  app.get('/cut', async (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
    reply.raw.write('{"partial"')
    setTimeout(() => { reply.raw.destroy() }, 20)
    return await reply
  })
  app.post('/bytes', async (request) => ({ type: request.headers['content-type'], length: (request.body as Buffer).length }))
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => { done(null, body) })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  teardown(async () => { await app.close() })
  return url
}

describe('NodeClient', () => {
  const teardown = useTeardown()

  it('streams lines across chunk boundaries, and posts JSON with the token', async () => {
    const client = new NodeClient(await server(teardown), { token: 'secret-token-123456' })
    const lines: string[] = []
    for await (const line of client.stream('/lines')) lines.push(line)
    expect(lines).toEqual(['{"n":1}', '{"n":2}', '{"n":3}'])
    expect(await client.postJson('/echo', { a: 1 })).toEqual({ got: { a: 1 }, auth: 'Bearer secret-token-123456' })
  })

  it('turns error answers, non-JSON, slow and oversized answers into one sentence', async () => {
    const url = await server(teardown)
    const client = new NodeClient(url, { timeoutMs: 500, maxResponseBytes: 1024 })
    await expect(client.getJson('/refuse')).rejects.toMatchObject({ name: 'ApiRequestError', status: 409, remoteName: 'JobExists', message: 'that job was already submitted; watch it with `buildhaus-node status`' })
    await expect(client.getJson('/html')).rejects.toMatchObject({ name: 'ApiRequestError', message: expect.stringMatching(/is not JSON; is that address a buildhaus node\?$/) })
    await expect(client.getJson('/slow')).rejects.toMatchObject({ name: 'NodeNotRunningError', message: expect.stringMatching(/did not answer in time/) })
    await expect(client.getJson('/huge')).rejects.toMatchObject({ name: 'ApiRequestError', message: expect.stringMatching(/larger than 1024 bytes/) })
    await expect(client.getJson('/missing')).rejects.toMatchObject({ name: 'ApiRequestError', status: 404 })
    // No node redirects: following one could take the token elsewhere.
    await expect(client.getJson('/moved')).rejects.toMatchObject({ name: 'ApiRequestError', status: 302, message: expect.stringMatching(/answered with a redirect \(HTTP 302\)/) })
    await expect(client.getJson('/cut')).rejects.toMatchObject({ name: 'ApiRequestError', message: expect.stringMatching(/closed the connection before its answer to GET \/cut was complete/) })
  })

  it('posts raw bytes as they are, with their length', async () => {
    const client = new NodeClient(await server(teardown))
    expect(await client.postBytes('/bytes', new Uint8Array(3000).fill(7))).toEqual({ type: 'application/octet-stream', length: 3000 })
  })

  it('ends a stream at once when its signal aborts, even while the server is silent', async () => {
    const client = new NodeClient(await server(teardown))
    // Many rounds: the abort once failed to reach a body being read now and then (a watch never returned).
    for (let round = 0; round < 20; round++) {
      const stop = new AbortController()
      const lines: string[] = []
      const reading = (async () => {
        try {
          for await (const line of client.stream('/quiet', { signal: stop.signal })) {
            lines.push(line)
            stop.abort()
          }
        } catch (err) {
          return (err as Error).name
        }
        return 'ended'
      })()
      const outcome = await Promise.race([reading, new Promise((resolve) => { setTimeout(() => { resolve('still reading 5 s after the abort') }, 5_000).unref() })])
      expect(outcome).toBe('AbortError')
      expect(lines).toEqual([': hello'])
    }
  })

  it('accepts --api with or without a scheme', () => {
    expect(parseApiUrl('127.0.0.1:4711')).toBe('http://127.0.0.1:4711')
    expect(parseApiUrl('http://[::1]:4711/')).toBe('http://[::1]:4711')
    expect(() => parseApiUrl('http://')).toThrow(expect.objectContaining({ name: 'UsageError' }))
  })
})
