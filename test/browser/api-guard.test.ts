import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { buildApiApp, type ApiContext } from '../../src/node/api/server.js'

/**
 * What a browser can make the node do. The mutation rule (the token, from
 * anywhere) meets browsers here: any web page the user opens is "on this
 * machine", so pages of other origins are refused outright and nothing rides
 * on the request coming from loopback. Through fastify's inject, which sets
 * the socket's remote address (dashboard.test.ts does the same over a real
 * network address when the machine has one).
 */

const TOKEN = 'e'.repeat(64)

function context (): ApiContext {
  return {
    peerId: '12D3KooWSelf',
    author: 'a'.repeat(64),
    version: '0.1.0',
    startedAt: Date.now(),
    token: TOKEN,
    local: () => ({ platforms: ['linux-x64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: '0.1.0' }),
    memberCount: () => 0,
    connectionCount: () => 0,
    ownAddresses: () => [],
    members: () => [],
    addressesOf: async () => []
  }
}

async function app (): Promise<ReturnType<typeof buildApiApp>> {
  const built = buildApiApp(context())
  built.post('/api/change', async () => ({ done: true }))
  await built.ready()
  return built
}

interface Attempt {
  remoteAddress: string
  host: string
  origin?: string
  token?: string
}

async function post (attempt: Attempt): Promise<{ status: number, body: unknown }> {
  const api = await app()
  const headers: Record<string, string> = { host: attempt.host, 'content-type': 'text/plain' }
  if (attempt.origin !== undefined) headers.origin = attempt.origin
  if (attempt.token !== undefined) headers.authorization = `Bearer ${attempt.token}`
  const response = await api.inject({ method: 'POST', url: '/api/change', remoteAddress: attempt.remoteAddress, headers, payload: 'x' })
  await api.close()
  return { status: response.statusCode, body: response.json() }
}

describe('the mutation guard and browsers', () => {
  it('lets the node\'s own page (and any non-browser client) on this machine change things with the token, and not without it', async () => {
    const pages = [
      { remoteAddress: '127.0.0.1', host: '127.0.0.1:4711', origin: 'http://127.0.0.1:4711' },
      { remoteAddress: '127.0.0.1', host: 'localhost:4711', origin: 'http://localhost:4711' },
      { remoteAddress: '::1', host: '[::1]:4711', origin: 'http://[::1]:4711' },
      // The CLI sends no Origin.
      { remoteAddress: '127.0.0.1', host: 'anything.example:4711' }
    ]
    for (const page of pages) {
      const refused = await post(page)
      expect(refused.status, page.host).toBe(403)
      expect(refused.body).toMatchObject({ error: { name: 'Forbidden', message: expect.stringMatching(/^changes need the node's API token, from this machine too/) } })
      expect((await post({ ...page, token: TOKEN })).status, page.host).toBe(200)
    }
  })

  it('refuses a page of another origin, even with the token', async () => {
    for (const origin of ['http://evil.example', 'http://127.0.0.1:8080', 'null']) {
      const answer = await post({ remoteAddress: '127.0.0.1', host: '127.0.0.1:4711', origin })
      expect(answer.status, origin).toBe(403)
      expect(answer.body).toEqual({ error: { name: 'Forbidden', message: `a page from ${origin} may not change this node; use the node's own dashboard at its API address` } })
    }
    expect((await post({ remoteAddress: '127.0.0.1', host: '127.0.0.1:4711', origin: 'http://evil.example', token: TOKEN })).status).toBe(403)
  })

  it('gives a page reached through a DNS name that is not loopback (rebinding) nothing without the token', async () => {
    for (const name of ['evil.example:4711', '127.evil.example:4711']) {
      const refused = await post({ remoteAddress: '127.0.0.1', host: name, origin: `http://${name}` })
      expect(refused.status, name).toBe(403)
      expect(refused.body).toMatchObject({ error: { name: 'Forbidden', message: expect.stringMatching(/API token/) } })
      // Its own origin with the token (which a rebinding page cannot read) is the node's own dashboard.
      expect((await post({ remoteAddress: '127.0.0.1', host: name, origin: `http://${name}`, token: TOKEN })).status).toBe(200)
    }
  })

  it('asks another machine\'s browser for the token: refused without it, accepted with it', async () => {
    const page = { remoteAddress: '192.0.2.50', host: '192.0.2.2:4711', origin: 'http://192.0.2.2:4711' }
    expect((await post(page)).status).toBe(403)
    expect((await post({ ...page, token: 'f'.repeat(64) })).status).toBe(403)
    expect((await post({ ...page, token: TOKEN })).status).toBe(200)
  })
})

describe('the dashboard\'s files', () => {
  it('serves the page with a content policy that allows only its own scripts, and assets by a fixed name pattern', async () => {
    const api = buildApiApp(context())
    const page = await api.inject({ method: 'GET', url: '/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.body).toContain('/assets/app.js')

    const script = await api.inject({ method: 'GET', url: '/assets/app.js' })
    expect(script.statusCode).toBe(200)
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8')
    // Unchanged files cost a 304 on reload.
    const again = await api.inject({ method: 'GET', url: '/assets/app.js', headers: { 'if-none-match': String(script.headers.etag) } })
    expect(again.statusCode).toBe(304)
    expect(again.body).toBe('')

    // lit-html, from the node's own dependencies, and the import map that names it, allowed by its hash alone.
    const lit = await api.inject({ method: 'GET', url: '/assets/lit-html/lit-html.js' })
    expect(lit.statusCode).toBe(200)
    expect(lit.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect((await api.inject({ method: 'GET', url: '/assets/lit-html/directives/repeat.js' })).statusCode).toBe(200)
    const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page.body)?.[1]
    expect(importMap).toBeDefined()
    expect(page.headers['content-security-policy']).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(importMap!).digest('base64')}';`)
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline')

    for (const url of ['/assets/..%2Fpackage.json', '/assets/%2e%2e%2fpackage.json', '/assets/index.html', '/assets/missing.js',
      '/assets/lit-html/package.json', '/assets/lit-html/..%2F..%2Fpackage.json', '/assets/lit-html/../../package.json', '/assets/lit-html/node/lit-html.js', '/assets/lit-html/missing.js']) {
      const refused = await api.inject({ method: 'GET', url })
      expect(refused.statusCode, url).toBe(404)
      expect(refused.json()).toMatchObject({ error: { name: 'NotFound' } })
    }
    await api.close()
  })
})
