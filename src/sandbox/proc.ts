import { readFileSync, readlinkSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { endianness } from 'node:os'

/** One process as /proc/<pid>/stat shows it. */
export interface ProcessInfo {
  pid: number
  ppid: number
  /** Process group and session. */
  pgrp: number
  session: number
  /** R, S, D, Z, … */
  state: string
  rssBytes: number
  /** utime + stime + cutime + cstime: its own CPU and that of the children it reaped. */
  cpuSeconds: number
  threads: number
  /** Clock ticks after boot when it started: with the pid, names a process even if the pid is reused. */
  startTime: number
}

let pageSize: number | undefined
let clockTicks: number | undefined

/** The kernel's auxiliary vector entries sysconf(3) reads these from: AT_PAGESZ and AT_CLKTCK. */
const AT_PAGESZ = 6
const AT_CLKTCK = 17
const THIRTY_TWO_BIT: ReadonlySet<string> = new Set(['arm', 'ia32', 'mips', 'mipsel', 'ppc'])

/**
 * A value of this process's auxiliary vector (/proc/self/auxv: pairs of
 * native words, type then value), as glibc's sysconf answers PAGESIZE and
 * CLK_TCK: read, not asked of getconf, which would be a process started by
 * the node (see host-process.ts) for two numbers.
 */
function auxv (type: number, fallback: number): number {
  try {
    const bytes = readFileSync('/proc/self/auxv')
    // The native word: 4 bytes on the 32-bit architectures Node runs on, 8 on the rest (s390x too, whose name lacks "64").
    const wide = !THIRTY_TWO_BIT.has(process.arch)
    const word = wide ? 8 : 4
    const le = endianness() === 'LE'
    const read = (at: number): number => wide
      ? Number(le ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at))
      : (le ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at))
    for (let at = 0; at + 2 * word <= bytes.length; at += 2 * word) {
      if (read(at) !== type) continue
      const value = read(at + word)
      return Number.isSafeInteger(value) && value > 0 ? value : fallback
    }
  } catch {}
  return fallback
}

/** Parse one /proc/<pid>/stat line; the command name may hold spaces and parentheses. */
export function parseStat (text: string): ProcessInfo | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return undefined
  const fields = text.slice(close + 2).split(' ')
  pageSize ??= auxv(AT_PAGESZ, 4096)
  clockTicks ??= auxv(AT_CLKTCK, 100)
  const num = (i: number): number => Number.parseInt(fields[i] ?? '0', 10)
  return {
    pid: Number.parseInt(text.slice(0, open), 10),
    state: fields[0] ?? '?',
    ppid: num(1),
    pgrp: num(2),
    session: num(3),
    cpuSeconds: (num(11) + num(12) + num(13) + num(14)) / clockTicks,
    threads: num(17),
    startTime: num(19),
    rssBytes: num(21) * pageSize
  }
}

/** Every process on the host that this node may look at, by pid. */
export async function readProcessTable (): Promise<Map<number, ProcessInfo>> {
  const table = new Map<number, ProcessInfo>()
  const names = await readdir('/proc')
  await Promise.all(names.map(async (name) => {
    if (!/^\d+$/.test(name)) return
    try {
      const info = parseStat(await readFile(`/proc/${name}/stat`, 'utf8'))
      if (info !== undefined) table.set(info.pid, info)
    } catch {
      // Gone since readdir: nothing to count.
    }
  }))
  return table
}

/** `root` and everything below it in the process tree (still attached to it). */
export function descendants (table: Map<number, ProcessInfo>, root: number): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>()
  for (const info of table.values()) {
    const list = children.get(info.ppid)
    if (list === undefined) children.set(info.ppid, [info])
    else list.push(info)
  }
  const out: ProcessInfo[] = []
  const first = table.get(root)
  if (first === undefined) return out
  const queue = [first]
  while (queue.length > 0) {
    const next = queue.shift()!
    out.push(next)
    queue.push(...(children.get(next.pid) ?? []))
  }
  return out
}

/** `pid` as it is now, or undefined when it is gone. (One tiny in-memory file: read synchronously, sparing a thread-pool round trip.) */
export function readProcessNow (pid: number): ProcessInfo | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return undefined
  }
}

export async function readProcess (pid: number): Promise<ProcessInfo | undefined> {
  return readProcessNow(pid)
}

/** Whether a process is still running (a zombie has finished: only its parent's wait is missing). */
export function isRunning (info: ProcessInfo | undefined): boolean {
  return info !== undefined && info.state !== 'Z' && info.state !== 'X'
}

let ownTagCache: string | undefined

/**
 * This node process as named in the groups and directories it leaves on the
 * host: its pid and its pid namespace, so that a later node can tell what a
 * dead one left (and never mistakes a live node in another pid namespace,
 * whose pid it cannot see, for a dead one).
 */
export function ownTag (): string {
  if (ownTagCache === undefined) {
    let namespace = '0'
    try {
      namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0'
    } catch {
      // no /proc/self/ns: pids alone
    }
    ownTagCache = `${process.pid}-${namespace}`
  }
  return ownTagCache
}

/** Whether a name starting with `<pid>-<namespace>-` (see ownTag) was left by a node process of this pid namespace that is gone. */
export function leftByDeadNode (tagged: string): boolean {
  const match = /^(\d+)-(\d+)(?:-|$)/.exec(tagged)
  if (match === null) return false
  const [, pid, namespace] = match
  if (`${pid}-${namespace}` === ownTag() || namespace !== ownTag().split('-')[1]) return false
  try {
    process.kill(Number(pid), 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}
