import { readdir, readFile } from 'node:fs/promises'

/**
 * Pids of the host's processes whose command line contains `token`. A job
 * puts a unique token in the command line of what it starts; none may be
 * found once its run has returned. Zombies have an empty command line and
 * do not count: they are dead, only not yet reaped.
 */
export async function processesWith (token: string): Promise<number[]> {
  const found: number[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      const cmdline = (await readFile(`/proc/${name}/cmdline`)).toString('utf8')
      if (cmdline.includes(token)) found.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return found
}

interface ProcessEntry { pid: number, ppid: number, comm: string, state: string, startTime: string }

async function processTable (): Promise<ProcessEntry[]> {
  const table: ProcessEntry[] = []
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const fields = stat.slice(close + 2).split(' ')
      table.push({ pid: Number(name), comm: stat.slice(stat.indexOf('(') + 1, close), state: fields[0]!, ppid: Number(fields[1]), startTime: fields[19]! })
    } catch {
      // gone meanwhile
    }
  }
  return table
}

/**
 * The sandboxes this process has running: every bwrap it started (steps are
 * spawned through `sh -c … exec bwrap`, so bwrap is its child) and all the
 * processes under it, as `pid:starttime` (a recycled pid is another process).
 */
export async function sandboxProcesses (): Promise<Set<string>> {
  const table = await processTable()
  const found = new Set<string>()
  // bwrap is this process's child, or its spawn helper's (src/sandbox/spawn-helper.ts).
  const parents = new Set([process.pid, ...table.filter((entry) => entry.ppid === process.pid).map((entry) => entry.pid)])
  let roots = table.filter((entry) => parents.has(entry.ppid) && entry.comm === 'bwrap').map((entry) => entry.pid)
  while (roots.length > 0) {
    const next: number[] = []
    for (const entry of table) {
      if (roots.includes(entry.pid) || roots.includes(entry.ppid)) {
        const key = `${entry.pid}:${entry.startTime}`
        if (!found.has(key)) {
          found.add(key)
          if (!roots.includes(entry.pid)) next.push(entry.pid)
        }
      }
    }
    roots = next
  }
  return found
}

/** Which of `processes` (as sandboxProcesses names them) are still running (zombies do not count). */
export async function stillRunning (processes: Iterable<string>): Promise<string[]> {
  const running = new Set<string>()
  for (const entry of await processTable()) {
    if (entry.state !== 'Z' && entry.state !== 'X') running.add(`${entry.pid}:${entry.startTime}`)
  }
  return [...processes].filter((key) => running.has(key))
}
