import { readdirSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

/**
 * Where the time of `--cpu-prof` profiles went, by source file and by
 * function, with the bundle's frames mapped back through its source maps
 * (the bundled node's own names are minified). Idle samples are left out.
 *
 *   BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" node dist/bench/user.js
 *   node dist/bench/profile-summary.js DIR                 # self time by file and by function
 *   node dist/bench/profile-summary.js DIR --callers spawn # who called a function (3 frames up)
 *   node dist/bench/profile-summary.js DIR --window FROM,TO  # only samples in a span of the monotonic clock (µs),
 *                                                           # e.g. bench/cluster's `oneAtATime.windowUs`
 *
 * A sample is wall time on the main thread: a thread blocked in a system
 * call (a fork waiting for its child's exec) counts as time in that call.
 */

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], startTime: number, samples: number[], timeDeltas: number[] }

/** A span of the monotonic clock in µs (V8's profile clock); samples outside it are left out. */
export interface Window { fromUs: number, toUs: number }

const maps = new Map<string, SourceMap | undefined>()

function sourceMapOf (url: string): SourceMap | undefined {
  if (!maps.has(url)) {
    let map: SourceMap | undefined
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${new URL(url).pathname}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0])
    } catch {
      map = undefined
    }
    maps.set(url, map)
  }
  return maps.get(url)
}

/** The frame's source file (a dependency by its package) and function, mapped back when it is bundled. */
export function frameName (frame: ProfileNode['callFrame']): { file: string, fn: string, line?: number } {
  let file = frame.url === '' ? frame.functionName : frame.url
  let fn = frame.functionName === '' ? '(anonymous)' : frame.functionName
  let line: number | undefined
  if (frame.url.includes('/dist/bundle/')) {
    const entry = sourceMapOf(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber)
    if (entry !== undefined && 'originalSource' in entry) {
      file = entry.originalSource.replace(/^.*?(node_modules\/|src\/)/, '$1')
      // `name` (the original identifier) is given by Node 22's findEntry but not yet in its types.
      fn = (entry as { name?: string }).name ?? fn
      line = entry.originalLine + 1
    }
  }
  return { file: file.replace(/^(?:.*\/)?(node_modules\/(?:@[^/]+\/)?[^/]+).*/, '$1'), fn, ...(line !== undefined ? { line } : {}) }
}

function selfTimes (profile: Profile, window?: Window): Map<number, number> {
  const times = new Map<number, number>()
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i]!
    at += delta
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) return
    times.set(id, (times.get(id) ?? 0) + delta)
  })
  return times
}

/** `FROM,TO` (µs of the monotonic clock) as a window; a clear error for anything else. */
export function parseWindow (text: string): Window {
  const parts = text.split(',').map((p) => Number(p.trim()))
  if (parts.length !== 2 || parts.some((n) => !Number.isFinite(n)) || parts[0]! >= parts[1]!) {
    throw new Error(`--window takes FROM,TO in µs of the monotonic clock with FROM < TO (as bench/cluster's oneAtATime.windowUs gives), not "${text}"`)
  }
  return { fromUs: parts[0]!, toUs: parts[1]! }
}

function profilesIn (dir: string): Profile[] {
  let names: string[]
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
  } catch (err) {
    throw new Error(`cannot read the directory ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the --cpu-prof-dir the bench wrote to`, { cause: err })
  }
  if (names.length === 0) throw new Error(`${dir} holds no .cpuprofile files: run a bench with BENCH_NODE_ARGS or BENCH_HOST_ARGS="--cpu-prof --cpu-prof-dir=${dir}" first`)
  return names.map((f) => {
    try {
      return JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile
    } catch (err) {
      throw new Error(`${join(dir, f)} is not a whole CPU profile (${err instanceof Error ? err.message : String(err)}); was its process still running?`, { cause: err })
    }
  })
}

function top (totals: Map<string, number>, all: number, count: number): string[] {
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, us]) => `${(us / all * 100).toFixed(1).padStart(5)} % ${(us / 1e6).toFixed(2).padStart(7)} s  ${name}`)
}

export function summarise (dir: string, count = 40, window?: Window): string {
  const byFile = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let all = 0
  for (const profile of profilesIn(dir)) {
    const times = selfTimes(profile, window)
    for (const node of profile.nodes) {
      const us = times.get(node.id) ?? 0
      if (us === 0 || node.callFrame.functionName === '(idle)') continue
      const { file, fn } = frameName(node.callFrame)
      all += us
      byFile.set(file, (byFile.get(file) ?? 0) + us)
      byFunction.set(`${file} ${fn}`, (byFunction.get(`${file} ${fn}`) ?? 0) + us)
    }
  }
  return [`busy (not idle): ${(all / 1e6).toFixed(1)} s`, '', 'by file:', ...top(byFile, all, count), '', 'by function:', ...top(byFunction, all, count)].join('\n')
}

/** Who called `target` (by function name), `depth` frames up, skipping Node's own plumbing. */
export function callers (dir: string, target: string, depth = 3, window?: Window): string {
  const stacks = new Map<string, number>()
  let all = 0
  for (const profile of profilesIn(dir)) {
    const times = selfTimes(profile, window)
    const byId = new Map(profile.nodes.map((n) => [n.id, n]))
    const parentOf = new Map<number, number>()
    for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
    for (const node of profile.nodes) {
      const us = times.get(node.id) ?? 0
      if (us === 0 || node.callFrame.functionName !== target) continue
      const chain: string[] = []
      for (let id = parentOf.get(node.id); id !== undefined && chain.length < depth; id = parentOf.get(id)) {
        const { file, fn, line } = frameName(byId.get(id)!.callFrame)
        if (file.startsWith('node:internal/process') || fn === '(anonymous)' || fn === '(root)') continue
        chain.push(`${file}${line !== undefined ? `:${line}` : ''} ${fn}`)
      }
      all += us
      const key = chain.join(' < ')
      stacks.set(key, (stacks.get(key) ?? 0) + us)
    }
  }
  return [`${target}: ${(all / 1e6).toFixed(2)} s`, ...top(stacks, all, 15)].join('\n')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir, ...rest] = process.argv.slice(2)
  const options = new Map<string, string>()
  for (let i = 0; i < rest.length; i += 2) {
    if ((rest[i] !== '--callers' && rest[i] !== '--window') || rest[i + 1] === undefined) options.set('bad', rest[i]!)
    else options.set(rest[i]!, rest[i + 1]!)
  }
  if (dir === undefined || options.has('bad')) {
    process.stderr.write('usage: node dist/bench/profile-summary.js DIR [--callers FUNCTION] [--window FROM,TO]\n')
    process.exit(2)
  }
  try {
    const window = options.has('--window') ? parseWindow(options.get('--window')!) : undefined
    const target = options.get('--callers')
    console.log(target !== undefined ? callers(dir, target, 3, window) : summarise(dir, 40, window))
  } catch (err) {
    process.stderr.write(`profile-summary: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
}
