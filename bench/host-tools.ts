import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SYSTEM_PATH } from '../src/sandbox/host.js'
import { runTreeTool } from '../src/sandbox/tree-walk.js'
import { SpawnHelper } from '../src/sandbox/spawn-helper.js'
import { round, spread } from './stats.js'

/**
 * What a tree-tool run (GNU find over a 100-entry workspace) costs the node:
 * started by the node's shared spawn helper, warm (src/sandbox/host-process.ts,
 * how the node starts it now), against Node's spawn in the node itself (how
 * it did before, when the tool inherited the ledger's descriptors), and a
 * helper started fresh (what the first run after 30 s without a process
 * pays). Interleaved; this process holds a 100 MB heap it writes between
 * runs, as a busy node does (a fork copies its page tables).
 * `npm run build && flock /work/bench.lock node dist/bench/host-tools.js`.
 */

const RUNS = 60
const COLD_RUNS = 8

interface Sample { ms: number, stallMs: number, cpuMs: number }

/** Wall time, the longest stop of this event loop (a 1 ms timer's lateness) and this process's CPU during `fn`. */
async function measure (fn: () => Promise<unknown>): Promise<Sample> {
  let last = performance.now()
  let stallMs = 0
  const timer = setInterval(() => {
    const now = performance.now()
    stallMs = Math.max(stallMs, now - last - 1)
    last = now
  }, 1)
  const cpu = process.cpuUsage()
  const started = performance.now()
  await fn()
  const ms = performance.now() - started
  const used = process.cpuUsage(cpu)
  clearInterval(timer)
  return { ms, stallMs, cpuMs: (used.user + used.system) / 1000 }
}

function summary (samples: Sample[]): Record<string, unknown> {
  return { wallMs: spread(samples.map((s) => s.ms), 2), loopStallMs: spread(samples.map((s) => s.stallMs), 2), nodeCpuMs: spread(samples.map((s) => s.cpuMs), 2) }
}

export async function benchHostTools (): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'buildhaus-bench-tools-'))
  try {
    for (let i = 0; i < 50; i++) {
      await mkdir(join(dir, `d${i}`))
      await writeFile(join(dir, `d${i}`, 'f'), 'x')
    }
    const heap = Array.from({ length: 100 }, () => Buffer.alloc(1 << 20, 1))
    const touch = (): void => { for (const block of heap) for (let i = 0; i < block.length; i += 4096) block[i]!++ }
    const find = '/usr/bin/find'
    const args = ['-P', dir, '-xdev', '-mindepth', '1', '-printf', '%y %s\\n']
    const env = { PATH: SYSTEM_PATH, LANG: 'C', LC_ALL: 'C' }
    const inNode = async (): Promise<void> => { await new Promise<void>((resolve, reject) => {
      const child = spawn(find, args, { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout.resume()
      child.stderr.resume()
      child.once('error', reject)
      child.once('close', () => { resolve() })
    }) }
    const viaHelper = async (): Promise<void> => { await runTreeTool(find, args, () => true) }
    await viaHelper()
    const before: Sample[] = []
    const now: Sample[] = []
    for (let i = 0; i < RUNS; i++) {
      touch()
      before.push(await measure(inNode))
      touch()
      now.push(await measure(viaHelper))
    }
    const cold: Sample[] = []
    for (let i = 0; i < COLD_RUNS; i++) {
      const helper = new SpawnHelper()
      touch()
      cold.push(await measure(async () => { await new Promise((resolve) => {
        const child = helper.spawn(find, args, { cwd: '/', env, stdio: ['ignore', 'pipe', 'pipe'] })
        child.stdout?.resume()
        child.stdio[2]?.resume()
        child.once('exit', resolve)
      }) }))
      helper.close()
    }
    const p50 = (samples: Sample[]): number => spread(samples.map((s) => s.ms), 2).p50
    return {
      runs: RUNS,
      sharedHelperWarm: summary(now),
      spawnInNode: summary(before),
      helperStartedFresh: summary(cold),
      warmMinusInNodeWallMsP50: round(p50(now) - p50(before), 2)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchHostTools(), null, 2))
  process.exit(0)
}
