import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stopChild } from './child-process.js'
import { inGroup } from './cpu-group.js'
import { round } from './stats.js'

/**
 * One `buildhaus-node join` process of a bench, started as a user starts it
 * (bin/, real home, real mesh file, loopback), and what /proc says of its
 * memory. Shared by bench/user.ts and bench/idle.ts.
 */

export const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../..' : '..', import.meta.url))
const BIN = join(ROOT, 'bin', 'buildhaus-node.js')

export interface NodeProcess {
  child: ChildProcess
  api: string
  listen: string[]
  author: string
  /** The API token from the node's home, which every change needs (as a user's curl would send it). */
  token: string
  stderr: string
}

export interface NodeProcessOptions {
  /** Options for the node's Node.js (default: BENCH_NODE_ARGS split on spaces, e.g. `--cpu-prof --cpu-prof-dir=DIR`). */
  nodeArgs?: string[]
  /** The environment of the process (default: this one's). */
  env?: NodeJS.ProcessEnv
  /** More `join` options (environments, platforms). */
  joinArgs?: string[]
  /** Start the node in this cgroup (bench/cpu-group.ts): its `cgroup.procs` file, written before Node starts. */
  cgroupProcs?: string
}

export async function startNodeProcess (scratch: string, index: number, bootstrap: string | undefined, slots: number | undefined, mesh: string, options: NodeProcessOptions = {}): Promise<NodeProcess> {
  const home = join(scratch, `node-${index}`)
  const args = [BIN, 'join', '--json', '--home', home, '--mesh', mesh, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0',
    ...(slots !== undefined ? ['--slots', String(slots)] : []), ...(bootstrap !== undefined ? ['--bootstrap', bootstrap] : []), ...options.joinArgs ?? []]
  const nodeArgs = options.nodeArgs ?? process.env.BENCH_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []
  const [file, ...argv] = inGroup(options.cgroupProcs, [process.execPath, ...nodeArgs, ...args])
  const child = spawn(file!, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-10_000) })
  const ready = await new Promise<{ api: string, listen: string[], author: string }>((resolve, reject) => {
    let pending = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node ${index} was not ready after 120 s: ${stderr.trim().slice(-500)}`))
    }, 120_000)
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk
      const line = pending.split('\n').find((l) => l.includes('"event":"ready"'))
      if (line !== undefined) { clearTimeout(timer); resolve(JSON.parse(line) as { api: string, listen: string[], author: string }) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`node ${index} exited with ${String(code)} before it was ready: ${stderr.trim().slice(-500)}`)) })
  })
  const token = (await readFile(join(home, 'api-token'), 'utf8')).trim()
  const node: NodeProcess = { child, api: ready.api, listen: ready.listen, author: ready.author, token, stderr: '' }
  child.stderr!.on('data', () => { node.stderr = stderr })
  return node
}

export async function stopNodeProcess (node: NodeProcess): Promise<void> {
  await stopChild(node.child, 20_000)
}

/** VmRSS = RssAnon (the process's own memory) + RssFile (resident pages of mapped files: the node binary, libraries) + RssShmem. */
export async function procMemory (pid: number): Promise<Record<string, number>> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const mb = (key: string): number => round(Number(new RegExp(`${key}:\\s+(\\d+)\\s+kB`).exec(status)?.[1] ?? NaN) / 1024, 1)
  return { vmRssMb: mb('VmRSS'), vmHwmMb: mb('VmHWM'), rssAnonMb: mb('RssAnon'), rssFileMb: mb('RssFile'), threads: Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? NaN) }
}

export async function procStatus (pid: number): Promise<{ hwmMb: number, rssMb: number }> {
  const { vmHwmMb, vmRssMb } = await procMemory(pid)
  return { hwmMb: vmHwmMb!, rssMb: vmRssMb! }
}

/**
 * Resident memory by mapping, from /proc/PID/smaps, in MB: each mapped file
 * by path (the node binary split by its segments' permissions: `r-xp` code,
 * `r--p` read-only data such as Node's built-in modules' sources and ICU's
 * data), `[heap]` (malloc's main arena), and the anonymous mappings together
 * (V8's heap pages, the other threads' malloc arenas, stacks).
 */
export async function residentByMapping (pid: number): Promise<Record<string, number>> {
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8')
  const kb = new Map<string, number>()
  let name = ''
  for (const line of smaps.split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (mapping !== null) {
      const [, perms, path] = mapping
      name = path === '' ? '(anonymous)' : path!.endsWith('/node') ? `${path} ${perms}` : path!
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null) kb.set(name, (kb.get(name) ?? 0) + Number(rss[1]))
  }
  return Object.fromEntries([...kb].filter(([, k]) => k >= 256).sort((a, b) => b[1] - a[1]).map(([n, k]) => [n, round(k / 1024, 1)]))
}
