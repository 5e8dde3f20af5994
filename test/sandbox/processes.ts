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
