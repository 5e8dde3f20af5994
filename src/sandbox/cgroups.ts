import { readFileSync, writeFileSync } from 'node:fs'
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describeError } from '../util/errors.js'
import { leftByDeadNode, ownTag } from './proc.js'
import { delay } from '../util/wait.js'

/** Counters of a run's cgroup that tell which limit the kernel enforced. */
export interface CgroupUsage {
  /** Processes the OOM killer killed for the memory limit. */
  oomKills: number
  /** Forks refused by the process limit. */
  pidsMaxHits: number
  /** CPU time of every process that ever ran in the group. */
  cpuSeconds: number
}

/** One run's cgroup (a directory in each hierarchy under v1, one directory under v2). */
export interface RunCgroup {
  /** Files a process writes its own pid into to join the group (before it forks anything). */
  readonly procsFiles: string[]
  usage: () => Promise<CgroupUsage>
  /** Pids of the processes in the group now. */
  pids: () => Promise<number[]>
  /** Remove the group once it is empty (waits a little for dying processes). */
  remove: () => Promise<void>
  /** Set new limits (a group made ahead of time, before its run's limits were known); a no-op when they are the same. */
  limit: (limits: CgroupLimits) => Promise<void>
}

export interface CgroupLimits { memoryBytes: number, pids: number }

export interface Cgroups {
  readonly version: 1 | 2
  create: (name: string, limits: CgroupLimits) => Promise<RunCgroup>
}

export type CgroupDetection = { ok: true, cgroups: Cgroups } | { ok: false, reason: string }

interface Mount { root: string, point: string, fstype: string, superOptions: string[] }

async function mounts (): Promise<Mount[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  return text.split('\n').filter(Boolean).map((line) => {
    const [left, right] = line.split(' - ')
    const fields = (left ?? '').split(' ')
    const [fstype, , superOptions] = (right ?? '').split(' ')
    return { root: unescape(fields[3] ?? ''), point: unescape(fields[4] ?? ''), fstype: fstype ?? '', superOptions: (superOptions ?? '').split(',') }
  })
}

/** mountinfo escapes spaces and friends as octal. */
function unescape (field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
}

/** This process's cgroup path per v1 controller, and its v2 path under the key ''. */
async function ownCgroups (): Promise<Map<string, string>> {
  const text = await readFile('/proc/self/cgroup', 'utf8')
  const paths = new Map<string, string>()
  for (const line of text.split('\n').filter(Boolean)) {
    const [, controllers, ...rest] = line.split(':')
    const path = rest.join(':')
    if (controllers === '') paths.set('', path)
    else for (const controller of (controllers ?? '').split(',')) paths.set(controller, path)
  }
  return paths
}

function under (mount: Mount, ownPath: string): string {
  const inside = ownPath.startsWith(mount.root) ? relative(mount.root, ownPath) : ownPath
  return join(mount.point, inside)
}

/**
 * Find cgroups this process may use to bound its runs: a writable cgroup v1
 * memory and pids hierarchy (checked by making a probe group), or a cgroup v2
 * group with the memory and pids controllers delegated to it. Nothing is
 * assumed: a machine with neither gets a reason, and the caller falls back to
 * rlimits and a /proc monitor.
 */
export async function detectCgroups (): Promise<CgroupDetection> {
  let allMounts: Mount[]
  let own: Map<string, string>
  try {
    allMounts = await mounts()
    own = await ownCgroups()
  } catch (err) {
    return { ok: false, reason: `cannot read this process's cgroups: ${describeError(err)}` }
  }
  const reasons: string[] = []
  const v1 = await detectV1(allMounts, own).catch((err: unknown) => describeError(err))
  if (typeof v1 !== 'string') return { ok: true, cgroups: v1 }
  reasons.push(`v1: ${v1}`)
  const v2 = await detectV2(allMounts, own).catch((err: unknown) => describeError(err))
  if (typeof v2 !== 'string') return { ok: true, cgroups: v2 }
  reasons.push(`v2: ${v2}`)
  return { ok: false, reason: reasons.join('; ') }
}

/**
 * Groups of nodes no longer running. A crash leaves them behind, nearly
 * always empty (bwrap dies with its parent), but a bwrap killed in the middle
 * of its set-up can leave its child waiting forever: whatever is still in a
 * dead node's group is killed before the group is removed.
 */
async function clearStale (base: string): Promise<void> {
  let names: string[]
  try {
    names = await readdir(base)
  } catch {
    return
  }
  for (const name of names) {
    const tagged = /^buildhaus-(?:probe-)?(.*)$/.exec(name)?.[1]
    if (tagged === undefined || !leftByDeadNode(tagged)) continue
    const dir = join(base, name)
    for (const member of await pidsIn([dir])) {
      try { process.kill(member, 'SIGKILL') } catch { /* gone */ }
    }
    await removeDirs([dir]).catch(() => {})
  }
}

async function probe (base: string, file: string, value: string): Promise<void> {
  const dir = join(base, `buildhaus-probe-${ownTag()}`)
  await mkdir(dir)
  try {
    await writeFile(join(dir, file), value)
  } finally {
    await rmdir(dir)
  }
}

async function detectV1 (allMounts: Mount[], own: Map<string, string>): Promise<Cgroups | string> {
  const bases = new Map<string, string>()
  for (const controller of ['memory', 'pids', 'cpuacct']) {
    const mount = allMounts.find((m) => m.fstype === 'cgroup' && m.superOptions.includes(controller))
    const path = own.get(controller)
    if (mount !== undefined && path !== undefined) bases.set(controller, under(mount, path))
  }
  const memory = bases.get('memory')
  const pids = bases.get('pids')
  if (memory === undefined || pids === undefined) return 'no memory and pids hierarchies mounted'
  for (const base of bases.values()) await clearStale(base)
  try {
    await probe(memory, 'memory.limit_in_bytes', String(64 * 1024 * 1024))
    await probe(pids, 'pids.max', '64')
  } catch (err) {
    return `cannot make a group under ${memory} and ${pids}: ${describeError(err)}`
  }
  let cpuacct = bases.get('cpuacct')
  if (cpuacct !== undefined) await probe(cpuacct, 'notify_on_release', '0').catch(() => { cpuacct = undefined })
  return { version: 1, create: async (name, limits) => await createV1(name, limits, memory, pids, cpuacct) }
}

// A run's group gets its limits with direct writes: a few small kernel files, microseconds each,
// where each thread-pool round trip costs ~50 µs of CPU on a small VM and waits for the event loop.
// Making and removing the group stay in the thread pool: the kernel may wait there (a memory
// cgroup going offline), and a direct call would hold the event loop for it.
async function createV1 (name: string, limits: CgroupLimits, memoryBase: string, pidsBase: string, cpuacctBase: string | undefined): Promise<RunCgroup> {
  const memory = join(memoryBase, `buildhaus-${name}`)
  const pids = join(pidsBase, `buildhaus-${name}`)
  const cpuacct = cpuacctBase === undefined ? undefined : join(cpuacctBase, `buildhaus-${name}`)
  const dirs = [memory, pids, ...(cpuacct === undefined ? [] : [cpuacct])]
  const made: string[] = []
  let current: CgroupLimits | undefined
  const limit = async (next: CgroupLimits): Promise<void> => {
    if (current?.memoryBytes === next.memoryBytes && current.pids === next.pids) return
    writeFileSync(join(memory, 'memory.limit_in_bytes'), String(next.memoryBytes))
    // With swap accounting, keep swap out of the bargain too; without it the file is absent.
    try { writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), String(next.memoryBytes)) } catch { /* no swap accounting */ }
    writeFileSync(join(pids, 'pids.max'), String(next.pids))
    current = { ...next }
  }
  try {
    for (const dir of dirs) {
      await mkdir(dir)
      made.push(dir)
    }
    await limit(limits)
  } catch (err) {
    for (const dir of made.reverse()) await rmdir(dir).catch(() => {})
    throw err
  }
  return {
    limit,
    procsFiles: dirs.map((dir) => join(dir, 'cgroup.procs')),
    // Small kernel files, read synchronously: a poll costs microseconds, not thread-pool round trips.
    usage: async () => ({
      oomKills: keyed(readFileSync(join(memory, 'memory.oom_control'), 'utf8'), 'oom_kill'),
      pidsMaxHits: keyed(readFileSync(join(pids, 'pids.events'), 'utf8'), 'max'),
      cpuSeconds: cpuacct === undefined ? 0 : Number(readFileSync(join(cpuacct, 'cpuacct.usage'), 'utf8')) / 1e9
    }),
    pids: async () => await pidsIn(dirs),
    remove: async () => { await removeDirs(dirs) }
  }
}

async function detectV2 (allMounts: Mount[], own: Map<string, string>): Promise<Cgroups | string> {
  const mount = allMounts.find((m) => m.fstype === 'cgroup2')
  const path = own.get('')
  if (mount === undefined || path === undefined) return 'no cgroup2 mount'
  const base = under(mount, path)
  const available = (await readFile(join(base, 'cgroup.controllers'), 'utf8')).trim().split(' ')
  if (!available.includes('memory') || !available.includes('pids')) {
    return `the memory and pids controllers are not delegated to ${base} (it has: ${available.join(' ') || 'none'})`
  }
  const enabled = (await readFile(join(base, 'cgroup.subtree_control'), 'utf8')).trim().split(' ')
  if (!enabled.includes('memory') || !enabled.includes('pids')) {
    try {
      await writeFile(join(base, 'cgroup.subtree_control'), '+memory +pids')
    } catch (err) {
      return `cannot enable memory and pids for groups under ${base}: ${describeError(err)} (start the node in a delegated cgroup whose subtree has them enabled)`
    }
  }
  await clearStale(base)
  try {
    await probe(base, 'pids.max', '64')
  } catch (err) {
    return `cannot make a group under ${base}: ${describeError(err)}`
  }
  return { version: 2, create: async (name, limits) => await createV2(name, limits, base) }
}

async function createV2 (name: string, limits: CgroupLimits, base: string): Promise<RunCgroup> {
  const dir = join(base, `buildhaus-${name}`)
  let current: CgroupLimits | undefined
  const limit = async (next: CgroupLimits): Promise<void> => {
    if (current?.memoryBytes === next.memoryBytes && current.pids === next.pids) return
    writeFileSync(join(dir, 'memory.max'), String(next.memoryBytes))
    try { writeFileSync(join(dir, 'memory.swap.max'), '0') } catch { /* no swap controller */ }
    writeFileSync(join(dir, 'pids.max'), String(next.pids))
    current = { ...next }
  }
  await mkdir(dir)
  try {
    await limit(limits)
  } catch (err) {
    await rmdir(dir).catch(() => {})
    throw err
  }
  return {
    limit,
    procsFiles: [join(dir, 'cgroup.procs')],
    usage: async () => ({
      oomKills: keyed(readFileSync(join(dir, 'memory.events'), 'utf8'), 'oom_kill'),
      pidsMaxHits: keyed(readFileSync(join(dir, 'pids.events'), 'utf8'), 'max'),
      cpuSeconds: keyed(readFileSync(join(dir, 'cpu.stat'), 'utf8'), 'usage_usec') / 1e6
    }),
    pids: async () => await pidsIn([dir]),
    remove: async () => {
      try { writeFileSync(join(dir, 'cgroup.kill'), '1') } catch { /* before Linux 5.14: the run's processes were killed one by one */ }
      await removeDirs([dir])
    }
  }
}

/** The number after `key` in a "key value" per line file; 0 when absent. */
function keyed (text: string, key: string): number {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k === key) return Number(v)
  }
  return 0
}

async function pidsIn (dirs: string[]): Promise<number[]> {
  const pids = new Set<number>()
  for (const dir of dirs) {
    let text = ''
    try {
      text = readFileSync(join(dir, 'cgroup.procs'), 'utf8')
    } catch {
      // removed meanwhile: no members
    }
    for (const line of text.split('\n')) if (line !== '') pids.add(Number(line))
  }
  return [...pids]
}

async function removeDirs (dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    // A group with processes still exiting is busy for a moment.
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(dir)
        break
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOENT') break
        if (code !== 'EBUSY' || attempt >= 100) throw err
        await delay(50)
      }
    }
  }
}

/**
 * The memory limit of the cgroup this process runs in (a container's, or a
 * systemd unit's MemoryMax), in bytes: the smallest limit set on its group or
 * any group above it, v1 or v2. Undefined when none is set or none can be read.
 */
export async function ownMemoryLimit (): Promise<number | undefined> {
  let allMounts: Mount[]
  let own: Map<string, string>
  try {
    allMounts = await mounts()
    own = await ownCgroups()
  } catch {
    return undefined
  }
  const found: number[] = []
  const v1 = allMounts.find((m) => m.fstype === 'cgroup' && m.superOptions.includes('memory'))
  const v1Path = own.get('memory')
  if (v1 !== undefined && v1Path !== undefined) found.push(...await limitsUpTo(v1.point, under(v1, v1Path), 'memory.limit_in_bytes'))
  const v2 = allMounts.find((m) => m.fstype === 'cgroup2')
  const v2Path = own.get('')
  if (v2 !== undefined && v2Path !== undefined) found.push(...await limitsUpTo(v2.point, under(v2, v2Path), 'memory.max'))
  // v1 says "no limit" with a number near 2^63.
  const real = found.filter((bytes) => Number.isFinite(bytes) && bytes > 0 && bytes < 2 ** 60)
  return real.length === 0 ? undefined : Math.min(...real)
}

/** The values of `file` in `dir` and each directory above it up to the hierarchy's mount point ("max" is left out). */
async function limitsUpTo (mountPoint: string, dir: string, file: string): Promise<number[]> {
  const values: number[] = []
  for (let here = dir; here.startsWith(mountPoint); here = join(here, '..')) {
    const text = await readFile(join(here, file), 'utf8').catch(() => undefined)
    if (text !== undefined && text.trim() !== 'max') values.push(Number(text.trim()))
    if (here === mountPoint) break
  }
  return values
}
