import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startCluster, startNodeProcess, waitForMesh, waitForVerdicts, writeJobDir, type NodeProcess } from '../helpers/cluster.js'
import { fakeResultBody, hostilePeer, throwawayAuthor, type HostilePeer, type ThrowawayAuthor } from '../helpers/hostile-peer.js'
import { tempDir } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'

/**
 * Issue 12, attack 1, against real node processes: throwaway keys (non-members
 * of the mesh) squat a job with claims of clock 0 and lease 2^53-1, then
 * publish matching fake results; or, without squatting, publish results that
 * disagree with the honest ones. Under the default trust mode (members) they
 * neither forge nor stall the verdict; under `--trust DIR` their claims hold
 * nothing either.
 */
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')
const EVIL = Buffer.from('#!/bin/sh\necho "nothing to see here"\n')

describe('colluding non-members against a mesh of members (3 node processes, the default trust mode)', () => {
  const stack: Array<() => unknown> = []
  const teardown = (fn: () => unknown): void => { stack.push(fn) }
  afterAll(async () => { while (stack.length > 0) await Promise.resolve(stack.pop()!()).catch(() => {}) })

  let nodes: NodeProcess[]
  let peer: HostilePeer
  let scratch: string

  beforeAll(async () => {
    nodes = await startCluster(teardown, { size: 3, args: ['--slots', '1'] })
    await waitForMesh(nodes)
    peer = await hostilePeer(teardown)
    await peer.connect(nodes[0]!.address)
    scratch = await tempDir(teardown, 'buildhaus-squat-')
  }, 120_000)

  /** Publish until node 0 lists every entry in the job's view (gossip reaches it only once the peer is in its mesh). */
  async function deliver (job: string, entries: Array<{ id: string, line: string }>): Promise<void> {
    await waitFor(async () => {
      for (const entry of entries) await peer.publishEntry(entry.line)
      const view = await nodes[0]!.job(job)
      const ids = new Set(view.entries)
      return entries.every((e) => ids.has(e.id))
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'the node to store the hostile entries' })
  }

  async function yielded (node: NodeProcess): Promise<number> {
    const text = await (await fetch(new URL('/metrics', node.apiUrl))).text()
    return Number(/^buildhaus_runs_yielded_total (\d+)$/m.exec(text)?.[1])
  }

  it('squatting claims (clock 0, lease 2^53-1) and matching fake results: the job is verified by the members\' build and `verify evil.bin` says NOT VERIFIED', async () => {
    const started = Date.now()
    const job = await nodes[0]!.submit(await writeJobDir(scratch, { name: 'squatted', build: 'sleep 2 && mkdir -p dist && sort words.txt > dist/out.txt' }))
    const squatters: ThrowawayAuthor[] = [throwawayAuthor(), throwawayAuthor()]
    const claims = squatters.map((s) => s.next({ clock: 0, time: Date.now(), type: 'claim', body: { job: job.id, platform: 'linux-x64', lease: Number.MAX_SAFE_INTEGER } }))
    await deliver(job.id, claims)
    const fakes = squatters.map((s) => s.next({ clock: 1, time: Date.now(), type: 'result', body: fakeResultBody(job.id, 'linux-x64', [{ path: 'dist/out.txt', sha256: sha256(EVIL), size: EVIL.length }]) }))
    await deliver(job.id, fakes)

    const verdicts = await waitForVerdicts(nodes, [job.id], { timeoutMs: 90_000 })
    const tookMs = Date.now() - started
    expect(verdicts[job.id]).toBe('verified')
    const view: JobView = await nodes[1]!.job(job.id)
    const platform = view.platforms[0]!
    const counted = platform.results.filter((r) => r.counted).map((r) => r.builder)
    const memberKeys = new Set(nodes.map((n) => n.ready.author))
    expect(counted.length).toBe(2)
    expect(counted.every((b) => memberKeys.has(b))).toBe(true)
    expect(platform.artifacts![0]!.sha256).not.toBe(sha256(EVIL))
    for (const s of squatters) {
      expect(platform.claims.find((c) => c.builder === s.hex)?.trusted).toBe(false)
      expect(platform.results.find((r) => r.builder === s.hex)).toMatchObject({ trusted: false, counted: false, agrees: false })
    }
    // Nobody stopped a run for the squatters.
    for (const node of nodes) expect(await yielded(node)).toBe(0)

    const evil = join(scratch, 'evil.bin')
    await writeFile(evil, EVIL)
    const verdict = await runCli(['verify', evil, '--api', nodes[2]!.apiUrl])
    expect(verdict.code).toBe(1)
    expect(verdict.stdout).toContain('NOT VERIFIED')
    expect(verdict.stdout).toMatch(new RegExp(`claimed by (${squatters.map((s) => s.hex.slice(0, 12)).join('|')}), (${squatters.map((s) => s.hex.slice(0, 12)).join('|')}) \\(not members\\)`))
    const good = join(scratch, 'good.txt')
    await writeFile(good, ['apple', 'pear', 'squatted'].join('\n') + '\n')
    expect(sha256(await readFile(good))).toBe(platform.artifacts![0]!.sha256)
    const real = await runCli(['verify', good, '--api', nodes[2]!.apiUrl])
    expect(real.code, real.stdout).toBe(0)
    console.log(`squatted job verified by members in ${tookMs} ms`)
  }, 150_000)

  it('three non-members publishing disagreeing results cannot turn a job into a mismatch', async () => {
    const job = await nodes[1]!.submit(await writeJobDir(scratch, { name: 'contested' }))
    const liars = [throwawayAuthor(), throwawayAuthor(), throwawayAuthor()]
    const lies = liars.map((l, i) => {
      const content = i === 2 ? 'a third story' : 'the same lie'
      return l.next({ clock: 0, time: Date.now(), type: 'result', body: fakeResultBody(job.id, 'linux-x64', [{ path: 'dist/out.txt', sha256: sha256(content), size: content.length }]) })
    })
    await deliver(job.id, lies)
    const verdicts = await waitForVerdicts(nodes, [job.id], { timeoutMs: 90_000 })
    expect(verdicts[job.id]).toBe('verified')
    const platform = (await nodes[0]!.job(job.id)).platforms[0]!
    expect(platform.results.filter((r) => !r.trusted).map((r) => r.builder).sort()).toEqual(liars.map((l) => l.hex).sort())
    expect(platform.mismatch).toBeUndefined()
  }, 120_000)
})

describe('squatters against nodes that count a trust list (--trust DIR)', () => {
  const stack: Array<() => unknown> = []
  const teardown = (fn: () => unknown): void => { stack.push(fn) }
  afterAll(async () => { while (stack.length > 0) await Promise.resolve(stack.pop()!()).catch(() => {}) })

  it('claims from keys outside the list hold nothing: the job is verified, not stalled', async () => {
    // Two homes with their keys made first, so that the trust list can name them.
    const homes = [await tempDir(teardown, 'buildhaus-trusting-'), await tempDir(teardown, 'buildhaus-trusting-')]
    const keys = await Promise.all(homes.map(async (home) => await testMesh().keyFor(home)))
    const list = await tempDir(teardown, 'buildhaus-trust-list-')
    await Promise.all(keys.map(async (key, i) => { await writeFile(join(list, `node${i}.pub`), `${key!}\n`) }))
    const first = await startNodeProcess(teardown, { home: homes[0]!, args: ['--slots', '1', '--trust', list] })
    const second = await startNodeProcess(teardown, { home: homes[1]!, args: ['--slots', '1', '--trust', list, '--bootstrap', first.address] })
    await waitForMesh([first, second])
    const peer = await hostilePeer(teardown)
    await peer.connect(first.address)
    const scratch = await tempDir(teardown, 'buildhaus-squat-')
    const job = await first.submit(await writeJobDir(scratch, { name: 'squatted-listed', build: 'sleep 2 && mkdir -p dist && sort words.txt > dist/out.txt' }))
    const squatters = [throwawayAuthor(), throwawayAuthor()]
    const claims = squatters.map((s) => s.next({ clock: 0, time: Date.now(), type: 'claim', body: { job: job.id, platform: 'linux-x64', lease: Number.MAX_SAFE_INTEGER } }))
    await waitFor(async () => {
      for (const claim of claims) await peer.publishEntry(claim.line)
      const ids = new Set((await first.job(job.id)).entries)
      return claims.every((c) => ids.has(c.id))
    }, { timeoutMs: 20_000, intervalMs: 300, what: 'the node to store the squatting claims' })
    const verdicts = await waitForVerdicts([first, second], [job.id], { timeoutMs: 90_000 })
    expect(verdicts[job.id]).toBe('verified')
    expect((await first.job(job.id)).platforms[0]!.results.filter((r) => r.counted).map((r) => r.builder).sort()).toEqual([...keys].sort())
  }, 150_000)
})
