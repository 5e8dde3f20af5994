import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { clockSkew } from '../../src/gossip/presence/index.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import type { HealthResponse } from '../../src/node/api/types.js'
import { ClockWatch, CLOCK_WARN_MS } from '../../src/node/services/index.js'
import { waitFor } from '../../src/util/wait.js'
import { testMesh } from '../helpers/test-mesh.js'
import { useTeardown } from '../helpers/temp-home.js'

const MINUTE = 60_000
const T = 1_800_000_000_000

/** A peer whose heartbeat said `time` and reached us at `seen` (our clock). */
function peer (author: string, seen: number, time: number): { author: string, lastSeen: number, heartbeat: { time: number } } {
  return { author, lastSeen: seen, heartbeat: { time } }
}

describe('this node\'s clock against its peers\'', () => {
  it('is the median offset of the members\' heartbeats: a lying minority moves it no further than the honest spread', () => {
    const members = new Set(['a', 'b', 'c'])
    const isMember = (author: string): boolean => members.has(author)
    // We run 15 min fast: every honest peer's heartbeat is 15 min behind our clock when it arrives.
    const honest = [peer('a', T, T - 15 * MINUTE - 5), peer('b', T, T - 15 * MINUTE + 3)]
    const liar = peer('c', T, T + 60 * MINUTE)
    expect(clockSkew([...honest, liar], isMember)).toEqual({ aheadMs: 15 * MINUTE - 3, peers: 3, basis: 'members' })
    // Strangers do not count while two members are heard.
    const strangers = Array.from({ length: 5 }, (_, i) => peer(`s${i}`, T, T + 30 * MINUTE))
    expect(clockSkew([...honest, ...strangers], isMember)).toMatchObject({ peers: 2, basis: 'members' })
    // Of an even split, the offset nearer zero: two peers that disagree never make a skew up.
    expect(clockSkew([peer('a', T, T), peer('b', T, T - 20 * MINUTE)], isMember)?.aheadMs).toBe(0)
    // Without two members, every peer heard; with fewer than two peers, nothing.
    expect(clockSkew(strangers.slice(0, 3), isMember)).toMatchObject({ aheadMs: -30 * MINUTE, peers: 3, basis: 'peers' })
    expect(clockSkew([honest[0]!], isMember)).toBeUndefined()
  })

  it('warns once when the skew passes the bound, and again only after it came back', () => {
    const warnings: string[] = []
    let offset = 0
    const watch = new ClockWatch({ members: () => [peer('a', T, T - offset), peer('b', T, T - offset)], isMember: () => true, warn: (m) => { warnings.push(m) } })
    watch.check()
    expect(warnings).toEqual([])
    offset = CLOCK_WARN_MS + MINUTE
    watch.check()
    watch.check()
    expect(warnings).toEqual(['WARNING: this node\'s clock runs 3.0 min ahead of its peers\' (the median of 2 members\' heartbeats); past 10 min its peers refuse everything it writes (claims, results, jobs). Set the clock right, e.g. with NTP (`timedatectl set-ntp true`).'])
    offset = 0
    watch.check()
    offset = -12 * MINUTE
    watch.check()
    expect(warnings[1]).toMatch(/^WARNING: this node's clock runs 12\.0 min behind its peers' .*; past 10 min it refuses what its peers write\./)
  })
})

describe('a node whose clock runs fast, on a real mesh', () => {
  const teardown = useTeardown()

  it('is told so, and says it in /api/health; its peers see nothing wrong with their own clocks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-clock-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    const nodes: RunningNode[] = []
    const warnings: string[][] = []
    teardown(async () => { await Promise.allSettled([...nodes].reverse().map(async (n) => { await n.stop() })) })
    for (let i = 0; i < 3; i++) {
      const home = join(dir, `node${i + 1}`)
      await testMesh().keyFor(home)
      const config = buildNodeConfig({
        home, mesh: testMesh().file, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: i === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
        mdns: false, platform: ['linux-x64'], slots: '0', api: '127.0.0.1:0', sandbox: 'none'
      }, {})
      const said: string[] = []
      warnings.push(said)
      // The third node's clock runs 15 minutes fast (its heartbeats carry it, and it notes arrivals by it).
      const now = i === 2 ? () => Date.now() + 15 * MINUTE : Date.now
      nodes.push(await startNode(config, { presence: { intervalMs: 300, now }, clockCheckMs: 200, warn: (m) => { said.push(m) } }))
    }
    const fast = nodes[2]!
    await waitFor(() => warnings[2]!.some((w) => w.startsWith('WARNING: this node\'s clock runs')), { timeoutMs: 20_000, what: 'the fast node to be warned about its clock' })
    expect(warnings[2]!.find((w) => w.includes('clock runs'))).toMatch(/^WARNING: this node's clock runs 15\.0 min ahead of its peers' \(the median of 2 members' heartbeats\)/)
    const health = await (await fetch(`${fast.apiUrl}/api/health`)).json() as HealthResponse
    expect(health.clock).toMatchObject({ peers: 2, basis: 'members' })
    expect(Math.abs(health.clock!.aheadMs - 15 * MINUTE)).toBeLessThan(5_000)
    // The honest nodes hear one honest and one fast peer: the median nearer zero says their clocks are fine.
    await waitFor(async () => ((await (await fetch(`${nodes[0]!.apiUrl}/api/health`)).json()) as HealthResponse).clock, { timeoutMs: 20_000, what: 'the first node to estimate its clock' })
    const honest = await (await fetch(`${nodes[0]!.apiUrl}/api/health`)).json() as HealthResponse
    expect(Math.abs(honest.clock!.aheadMs)).toBeLessThan(5_000)
    expect(warnings[0]!.filter((w) => w.includes('clock runs'))).toEqual([])
  })
})
