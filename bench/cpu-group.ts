import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { delay, waitFor } from '../src/util/wait.js'

/**
 * A cgroup v1 `cpuacct` group for a bench's node processes: it counts the
 * CPU of every process started in it, whoever reaps it. Counting by /proc
 * (a process's own time plus its reaped children's) misses what a sandbox
 * leaves to the machine's init: bwrap exits as soon as the step has, so the
 * sandbox's init, the step's shell and the step are reaped by pid 1, and
 * their CPU is in no node's `cutime`. The group has it.
 *
 * Only cpuacct: the node's memory and pids groups (which its sandbox
 * delegates from) stay where they were. Needs root and a v1 cpuacct
 * hierarchy; elsewhere `makeCpuGroup` says why not and the bench counts by
 * /proc alone.
 */
export interface CpuGroup {
  /** Write a pid here to move that process (and what it starts from then on) into the group. */
  procsFile: string
  /** CPU seconds of everything that ran in the group (and its sub-groups) since it was made. */
  usageSeconds: () => Promise<number>
  /** Remove the group (and sub-groups a node left behind), once the processes in it have exited (waiting `timeoutMs`, default 10 s). */
  remove: (timeoutMs?: number) => Promise<void>
  /** Move this process into the group: what it starts from then on is counted too. */
  join: () => Promise<void>
  /** Move this process back where it was. */
  leave: () => Promise<void>
}

const CPUACCT = '/sys/fs/cgroup/cpuacct'

/**
 * `command` (file and arguments) started in the group whose `cgroup.procs`
 * is `procsFile`: a shell writes its pid there, then execs the command, so
 * the command keeps the shell's pid and nothing it starts is outside.
 */
export function inGroup (procsFile: string | undefined, command: string[]): string[] {
  return procsFile === undefined ? command : ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', procsFile, ...command]
}

export async function makeCpuGroup (name: string): Promise<CpuGroup | { unavailable: string }> {
  const usage = await readFile(join(CPUACCT, 'cpuacct.usage'), 'utf8').catch(() => undefined)
  if (usage === undefined) return { unavailable: `no cgroup v1 cpuacct hierarchy at ${CPUACCT}` }
  const own = (await readFile('/proc/self/cgroup', 'utf8')).split('\n').find((line) => line.split(':')[1]?.split(',').includes('cpuacct'))?.split(':')[2] ?? '/'
  const dir = join(CPUACCT, own, name)
  try {
    await mkdir(dir)
  } catch (err) {
    return { unavailable: `cannot make ${dir}: ${(err as Error).message}` }
  }
  return {
    procsFile: join(dir, 'cgroup.procs'),
    usageSeconds: async () => Number(await readFile(join(dir, 'cpuacct.usage'), 'utf8')) / 1e9,
    remove: async (timeoutMs = 10_000) => {
      // A closed executor's spawn helper exits a moment after close() returns.
      await waitFor(async () => (await readFile(join(dir, 'cgroup.procs'), 'utf8')).trim() === '', { timeoutMs, intervalMs: 50, what: `the processes in ${dir} to exit` })
      await removeTree(dir)
    },
    join: async () => { await writeFile(join(dir, 'cgroup.procs'), String(process.pid)) },
    leave: async () => { await writeFile(join(CPUACCT, own, 'cgroup.procs'), String(process.pid)) }
  }
}

/** rmdir a cgroup directory, sub-groups first; a group whose last process just exited may take a moment to let go. */
async function removeTree (dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => [])
  for (const entry of entries) if (entry.isDirectory()) await removeTree(join(dir, entry.name))
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      if (attempt >= 50) throw err
      await delay(20)
    }
  }
}
