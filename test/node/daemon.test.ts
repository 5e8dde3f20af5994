import { stat } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildNodeConfig, type NodeConfig } from '../../src/node/config.js'
import { startNode } from '../../src/node/daemon.js'
import type { PeersResponse } from '../../src/node/api/types.js'
import { waitFor } from '../../src/util/wait.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

async function config (teardown: Teardown, extra: string[] = []): Promise<NodeConfig> {
  const home = await tempDir(teardown)
  const flags = { home, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [] as string[], mdns: false, platform: [] as string[], api: '127.0.0.1:0' }
  for (let i = 0; i < extra.length; i += 2) {
    const [name, value] = [extra[i]!, extra[i + 1]!]
    if (name === '--bootstrap') flags.bootstrap.push(value)
    else if (name === '--api') flags.api = value
    else if (name === '--listen') flags.listen = [value]
  }
  return buildNodeConfig(flags, {})
}

async function listenOn (port: number): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject).listen(port, '127.0.0.1', resolve) })
  return server
}

describe('startNode (in-process)', () => {
  const teardown = useTeardown()

  it('runs two nodes in one process that find each other; one stopping cleanly leaves at once', async () => {
    // A presence timeout far beyond the deadlines below: a departure seen in time was announced, not timed out.
    const presence = { intervalMs: 300, timeoutMs: 120_000 }
    const first = await startNode(await config(teardown), { presence })
    teardown(async () => { await first.stop() })
    const second = await startNode(await config(teardown, ['--bootstrap', first.listenAddresses()[0]!]), { presence })
    teardown(async () => { await second.stop() })

    await waitFor(async () => {
      const { peers } = await (await fetch(`${first.apiUrl}/api/peers`)).json() as PeersResponse
      return peers.some((p) => p.peerId === second.peerId.toString() && p.addresses.length > 0)
    }, { timeoutMs: 10_000, what: 'the first node to list the second' })
    expect((await stat(join(second.config.home, 'api.json'))).isFile()).toBe(true)

    await second.stop()
    await second.stop() // idempotent
    await expect(stat(join(second.config.home, 'api.json'))).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(fetch(`${second.apiUrl}/api/health`)).rejects.toThrow()
    await waitFor(() => first.presence.size === 0, { timeoutMs: 10_000, what: 'the first node to see the second leave (it unsubscribed from presence on its way out)' })
  })

  it('unwinds what it started when a later service fails: the p2p port is free again', async () => {
    const busy = await listenOn(0)
    teardown(async () => { await new Promise((resolve) => busy.close(resolve)) })
    const apiPort = (busy.address() as { port: number }).port
    const probe = await listenOn(0)
    const p2pPort = (probe.address() as { port: number }).port
    await new Promise((resolve) => probe.close(resolve))

    const cfg = await config(teardown, ['--api', `127.0.0.1:${apiPort}`, '--listen', `/ip4/127.0.0.1/tcp/${p2pPort}`])
    await expect(startNode(cfg)).rejects.toMatchObject({ name: 'PortInUseError' })
    // libp2p, started before the API, was stopped again: its port can be taken.
    const again = await listenOn(p2pPort)
    await new Promise((resolve) => again.close(resolve))
    await expect(stat(join(cfg.home, 'api.json'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
