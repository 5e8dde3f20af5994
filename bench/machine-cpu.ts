import { readFile } from 'node:fs/promises'

/** Linux's USER_HZ: /proc's CPU times are in these ticks. */
export const TICKS_PER_SECOND = 100

/**
 * CPU seconds the whole machine has spent busy since boot (user, nice,
 * system, irq, softirq of /proc/stat's first line; not idle, not I/O
 * wait). A difference of two readings is what everything on the machine
 * cost meanwhile, sandboxes and short-lived processes included.
 */
export async function machineBusySeconds (): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.split(/\s+/).slice(1, 8).map(Number)
  const [user, nice, system, , , irq, softirq] = fields as [number, number, number, number, number, number, number]
  return (user + nice + system + irq + softirq) / TICKS_PER_SECOND
}
