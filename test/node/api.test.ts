import { describe, expect, it } from 'vitest'
import { buildApiApp, type ApiContext } from '../../src/node/api/server.js'
import { isLoopback } from '../../src/node/api/auth.js'
import type { HealthResponse, PeersResponse } from '../../src/node/api/types.js'

const TOKEN = 'f'.repeat(64)

/** A fixed view of a node with one other member: what the routes read. */
function context (): ApiContext {
  return {
    peerId: '12D3KooWSelf',
    author: 'a'.repeat(64),
    version: '0.1.0',
    startedAt: Date.now() - 5_000,
    token: TOKEN,
    local: () => ({ platforms: ['linux-x64'], slots: 2, free: 1, running: [`${'c'.repeat(64)}/linux-x64`], accepts: { network: false, root: false }, version: '0.1.0' }),
    memberCount: () => 1,
    connectionCount: () => 1,
    ownAddresses: () => ['/ip4/127.0.0.1/tcp/4710/p2p/12D3KooWSelf'],
    members: () => [{
      peerId: '12D3KooWOther',
      author: 'b'.repeat(64),
      firstSeen: 1,
      lastSeen: 2,
      heartbeat: { v: 1, platforms: ['linux-arm64'], slots: 4, free: 4, running: [], accepts: { network: true, root: false }, version: '0.1.0', time: 2 }
    }],
    addressesOf: async () => ['/ip4/192.0.2.8/tcp/4710']
  }
}

/** The app with one mutation route, as later layers will add (submission, cancel…). */
async function appWithMutation (overrides: Partial<ApiContext> = {}): Promise<ReturnType<typeof buildApiApp>> {
  const app = buildApiApp({ ...context(), ...overrides })
  app.post('/api/test-mutation', async () => ({ done: true }))
  await app.ready()
  return app
}

describe('HTTP API', () => {
  it('GET /api/health says who the node is', async () => {
    const app = buildApiApp(context())
    const response = await app.inject({ method: 'GET', url: '/api/health' })
    expect(response.statusCode).toBe(200)
    const body = response.json<HealthResponse>()
    expect(body).toMatchObject({ ok: true, peerId: '12D3KooWSelf', author: 'a'.repeat(64), platforms: ['linux-x64'], version: '0.1.0', peers: 1, connections: 1, slots: 2, free: 1 })
    expect(body.uptimeMs).toBeGreaterThanOrEqual(5_000)
    await app.close()
  })

  it('GET /api/peers lists this node (self: true) and every live member', async () => {
    const app = buildApiApp(context())
    const { peers } = (await app.inject({ method: 'GET', url: '/api/peers' })).json<PeersResponse>()
    expect(peers).toHaveLength(2)
    expect(peers[0]).toMatchObject({ peerId: '12D3KooWSelf', self: true, slots: 2, free: 1, running: [`${'c'.repeat(64)}/linux-x64`], addresses: ['/ip4/127.0.0.1/tcp/4710/p2p/12D3KooWSelf'] })
    expect(peers[1]).toEqual({
      peerId: '12D3KooWOther',
      author: 'b'.repeat(64),
      self: false,
      platforms: ['linux-arm64'],
      slots: 4,
      free: 4,
      running: [],
      accepts: { network: true, root: false },
      version: '0.1.0',
      lastSeen: 2,
      addresses: ['/ip4/192.0.2.8/tcp/4710']
    })
    await app.close()
  })

  it('answers unknown routes and bad bodies with a JSON error of one sentence', async () => {
    const app = await appWithMutation()
    const missing = await app.inject({ method: 'GET', url: '/api/nothing?x=1' })
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toEqual({ error: { name: 'NotFound', message: 'there is no GET /api/nothing on this node; GET /api/health lists what it is' } })

    const badJson = await app.inject({ method: 'POST', url: '/api/test-mutation', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, payload: '{not json' })
    expect(badJson.statusCode).toBe(400)
    expect(badJson.json()).toMatchObject({ error: { name: 'BadRequest', message: expect.any(String) } })
    await app.close()
  })

  describe('mutations', () => {
    it('need the token from loopback too: other users of the machine and whatever shares its network (git for watches, builds with network) reach 127.0.0.1', async () => {
      const app = await appWithMutation()
      for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
        const none = await app.inject({ method: 'POST', url: '/api/test-mutation', remoteAddress, payload: {} })
        expect(none.statusCode, remoteAddress).toBe(403)
        expect(none.json()).toEqual({ error: { name: 'Forbidden', message: 'changes need the node\'s API token, from this machine too: send "Authorization: Bearer <contents of api-token in the node\'s home>" (the CLI reads it from the node\'s home; the dashboard asks for it under "API token", or open the link `join` printed)' } })
        const right = await app.inject({ method: 'POST', url: '/api/test-mutation', remoteAddress, headers: { authorization: `Bearer ${TOKEN}` }, payload: {} })
        expect(right.statusCode, remoteAddress).toBe(200)
      }
      await app.close()
    })

    it('from another machine need the bearer token: 403 with one sentence otherwise', async () => {
      const app = await appWithMutation()
      const remoteAddress = '192.0.2.50'
      const none = await app.inject({ method: 'POST', url: '/api/test-mutation', remoteAddress, payload: {} })
      expect(none.statusCode).toBe(403)
      expect(none.json()).toEqual({ error: { name: 'Forbidden', message: 'changes from another machine need the node\'s API token: send "Authorization: Bearer <contents of api-token in the node\'s home>"' } })

      const wrong = await app.inject({ method: 'POST', url: '/api/test-mutation', remoteAddress, headers: { authorization: `Bearer ${'0'.repeat(64)}` }, payload: {} })
      expect(wrong.statusCode).toBe(403)
      expect(wrong.json<{ error: { message: string } }>().error.message).toMatch(/^the API token does not match/)

      const right = await app.inject({ method: 'POST', url: '/api/test-mutation', remoteAddress, headers: { authorization: `Bearer ${TOKEN}` }, payload: {} })
      expect(right.statusCode).toBe(200)
      expect(right.json()).toEqual({ done: true })

      // Reads stay open to whoever can reach the API.
      expect((await app.inject({ method: 'GET', url: '/api/health', remoteAddress })).statusCode).toBe(200)
      // Headers cannot fake loopback.
      const forwarded = await app.inject({ method: 'DELETE', url: '/api/test-mutation', remoteAddress, headers: { 'x-forwarded-for': '127.0.0.1' } })
      expect(forwarded.statusCode).toBe(403)
      await app.close()
    })

    it('that change membership (vouch, unvouch) need the token even from loopback: whatever shares this machine\'s network cannot admit a key', async () => {
      // git polling a stranger's repository shares the host's network in its sandbox; a git taken over by a crafted
      // repository could otherwise make this node vouch for the attacker's keys through 127.0.0.1.
      const app = buildApiApp(context())
      for (const type of ['vouch', 'unvouch']) app.post(`/api/members/${type}`, async () => ({ done: true }))
      await app.ready()
      for (const type of ['vouch', 'unvouch']) {
        const none = await app.inject({ method: 'POST', url: `/api/members/${type}`, remoteAddress: '127.0.0.1', payload: { member: 'b'.repeat(64) } })
        expect(none.statusCode, type).toBe(403)
        expect(none.json().error.message).toMatch(/^changes need the node's API token, from this machine too/)
        const right = await app.inject({ method: 'POST', url: `/api/members/${type}`, remoteAddress: '127.0.0.1', headers: { authorization: `Bearer ${TOKEN}` }, payload: { member: 'b'.repeat(64) } })
        expect(right.statusCode, type).toBe(200)
      }
      // Decided on the route, not the text of the URL.
      expect((await app.inject({ method: 'POST', url: '/api/members/vouch?via=loopback', remoteAddress: '127.0.0.1', payload: {} })).statusCode).toBe(403)
      await app.close()
    })

    it('loopback is decided on the socket address', () => {
      expect(isLoopback('127.0.0.1')).toBe(true)
      expect(isLoopback('127.8.9.10')).toBe(true)
      expect(isLoopback('::1')).toBe(true)
      expect(isLoopback('::ffff:127.0.0.1')).toBe(true)
      expect(isLoopback('::ffff:10.0.0.1')).toBe(false)
      expect(isLoopback('10.0.0.127')).toBe(false)
      expect(isLoopback(undefined)).toBe(false)
    })
  })
})
