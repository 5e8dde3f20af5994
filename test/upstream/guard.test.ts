import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { boundedGet } from '../../src/upstream/http.js'
import { AddressPolicy } from '../../src/upstream/index.js'

/**
 * Watches are anyone's: a watch must not make a node read its own loopback
 * services or its LAN unless the operator allowed that address. This test
 * serves on loopback and allows it explicitly where it must reach it.
 */
describe('addresses a watch may reach', () => {
  let server: Server
  let port = 0
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/redirect') { res.writeHead(302, { location: `http://127.0.0.2:${port}/` }); res.end(); return }
      if (req.url === '/big') { res.end(Buffer.alloc(2048)); return }
      res.end('hello')
    })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => { await new Promise((resolve) => server.close(resolve)) })

  it('refuses loopback, private, link-local and mapped addresses by default', () => {
    const policy = new AddressPolicy()
    for (const address of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '224.0.0.1']) {
      expect(policy.permits(address), address).toBe(false)
    }
    for (const address of ['93.184.216.34', '2606:4700::1111']) expect(policy.permits(address), address).toBe(true)
  })

  it('a request to loopback fails unless allowed, and a redirect is checked again', async () => {
    await expect(boundedGet(`http://127.0.0.1:${port}/`, { policy: new AddressPolicy(), maxBytes: 1024 })).rejects.toThrow(/may not reach/)
    await expect(boundedGet(`http://localhost:${port}/`, { policy: new AddressPolicy(), maxBytes: 1024 })).rejects.toThrow(/may not reach/)
    const allowed = new AddressPolicy(['127.0.0.1'])
    expect((await boundedGet(`http://127.0.0.1:${port}/`, { policy: allowed, maxBytes: 1024 })).toString()).toBe('hello')
    // 127.0.0.2 is loopback too, and not allowed: the redirect is refused.
    await expect(boundedGet(`http://127.0.0.1:${port}/redirect`, { policy: allowed, maxBytes: 1024 })).rejects.toThrow(/127\.0\.0\.2/)
    await expect(boundedGet(`http://127.0.0.1:${port}/big`, { policy: allowed, maxBytes: 1024 })).rejects.toThrow(/more than the 1024/)
  })

  it('a bad --watch-allow is a usage error', () => {
    expect(() => new AddressPolicy(['not-an-address'])).toThrow(/--watch-allow/)
  })
})
