import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { delay } from '../src/util/wait.js'
import { procMemory, residentByMapping, startNodeProcess, stopNodeProcess } from './node-process.js'
import { round } from './stats.js'

/**
 * The memory of one idle `buildhaus-node join` process alone (no peers): the
 * fast loop for memory work, a minute where bench/user.ts's idle measure
 * among 50 peers takes five. After the ready line and `settleMs`, /proc is
 * read `samples` times a second apart (V8 collects when it likes, so one
 * reading can be a few MB either way; the median is the figure) and the
 * resident pages are broken down by mapping once. A bare Node.js process
 * (`node -e` with a timer) is measured the same way: the floor no code of
 * ours can go under.
 *
 *   npm run build && node dist/bench/idle.js
 *
 * Options of the measured node's Node.js: BENCH_NODE_ARGS (see
 * bench/node-process.ts); its environment is this process's.
 */
export interface BenchIdleOptions {
  /** Idle time after the ready line before the first reading (default 20 s). */
  settleMs?: number
  /** Readings, one a second (default 10). */
  samples?: number
  /** Measure a bare Node.js process too (default true). */
  bare?: boolean
}

type Memory = Record<string, number>

async function sample (pid: number, count: number): Promise<Memory> {
  const readings: Memory[] = []
  for (let i = 0; i < count; i++) {
    if (i > 0) await delay(1_000)
    readings.push(await procMemory(pid))
  }
  const median = (key: string): number => {
    const sorted = readings.map((r) => r[key]!).sort((a, b) => a - b)
    return sorted[Math.floor((sorted.length - 1) / 2)]!
  }
  const rss = readings.map((r) => r.vmRssMb!)
  return {
    vmRssMb: median('vmRssMb'),
    rssAnonMb: median('rssAnonMb'),
    rssFileMb: median('rssFileMb'),
    vmRssMinMb: Math.min(...rss),
    vmRssMaxMb: Math.max(...rss),
    vmHwmMb: readings.at(-1)!.vmHwmMb!,
    threads: readings.at(-1)!.threads!
  }
}

async function bareNode (settleMs: number, samples: number): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)'], { stdio: 'ignore' })
  try {
    await delay(Math.min(settleMs, 3_000))
    return { memory: await sample(child.pid!, Math.min(samples, 3)), mappings: await residentByMapping(child.pid!) }
  } finally {
    child.kill('SIGKILL')
  }
}

export async function benchIdle (options: BenchIdleOptions = {}): Promise<Record<string, unknown>> {
  const settleMs = options.settleMs ?? 20_000
  const samples = options.samples ?? 10
  const result: Record<string, unknown> = {
    what: `one \`buildhaus-node join\` process, no peers: ${settleMs / 1000} s after its ready line, the median of ${samples} readings of /proc/PID/status a second apart`,
    loadavgStart: loadavg().map((l) => round(l, 2)),
    nodeArgs: process.env.BENCH_NODE_ARGS ?? ''
  }
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-idle-alone-'))
  try {
    const mesh = join(scratch, 'mesh.json')
    await foundMeshFor([join(scratch, 'node-0')], mesh, { name: 'bench-idle-alone' })
    const startedAt = performance.now()
    const node = await startNodeProcess(scratch, 0, undefined, undefined, mesh)
    try {
      result.readyMs = Math.round(performance.now() - startedAt)
      await delay(settleMs)
      result.memory = await sample(node.child.pid!, samples)
      result.mappings = await residentByMapping(node.child.pid!)
    } finally {
      await stopNodeProcess(node)
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  if (options.bare ?? true) result.bareNode = await bareNode(settleMs, samples)
  result.loadavgEnd = loadavg().map((l) => round(l, 2))
  return result
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const number = (name: string): number | undefined => process.env[name] === undefined ? undefined : Number(process.env[name])
  const settleMs = number('BENCH_SETTLE_MS')
  const samples = number('BENCH_SAMPLES')
  console.log(JSON.stringify(await benchIdle({
    ...(settleMs !== undefined ? { settleMs } : {}),
    ...(samples !== undefined ? { samples } : {}),
    bare: process.env.BENCH_BARE !== '0'
  }), null, 2))
}
