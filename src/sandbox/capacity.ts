import { statfs } from 'node:fs/promises'
import { availableParallelism, totalmem } from 'node:os'
import { ownMemoryLimit } from './cgroups.js'
import { HARD_MAXIMUMS, MINIMUMS, MiB } from './limits.js'
import type { SandboxLimits } from './types.js'

/** What this machine has to give builds, measured when the node starts. */
export interface HostCapacity {
  /** Physical memory, or the node's own cgroup's memory limit when lower (a container). */
  memoryMb: number
  /** Free space (for unprivileged users) on the file system of the node's work directory. */
  diskFreeMb: number
  /** CPUs this process may use. */
  cpus: number
  /** Builds the node runs at once: the host is shared between them. */
  slots: number
}

/**
 * The share of the host's memory, and of the work directory's free space, that
 * all of a default node's builds together may take: half. The other half is
 * the volunteer's (their own programs, the node's blob store and log).
 */
export const HOST_SHARE = 0.5

/**
 * The longest a stranger's job may run on a node whose policy does not say
 * otherwise (the hard maximum, 6 h, is for volunteers who raise it).
 */
export const DEFAULT_MAX_WALL_SECONDS = 2 * 60 * 60

/** Measure memory, free disk in `workDir` and CPUs; `slots` is how many builds run at once. */
export async function measureHost (workDir: string, slots: number): Promise<HostCapacity> {
  const physical = totalmem()
  const limit = await ownMemoryLimit()
  const memoryBytes = limit === undefined ? physical : Math.min(physical, limit)
  let diskFreeMb = 0
  try {
    const fs = await statfs(workDir)
    diskFreeMb = Math.floor(Number(fs.bavail) * Number(fs.bsize) / MiB)
  } catch {
    // An unreadable work directory: the workspace cap falls to its minimum, and building will fail loudly anyway.
  }
  return { memoryMb: Math.floor(memoryBytes / MiB), diskFreeMb, cpus: availableParallelism(), slots: Math.max(1, slots) }
}

/**
 * The most one job may have on this host when the volunteer's policy does not
 * set a maximum: each slot's share of half the memory and half the free disk,
 * at most DEFAULT_MAX_WALL_SECONDS of wall time, and no more CPU time than
 * its share of the CPUs for that long. A file is never larger than the
 * workspace. Never above the hard maximums, never below the minimums.
 */
export function hostMaximums (host: HostCapacity): SandboxLimits {
  const slots = Math.max(1, host.slots)
  const wallSeconds = Math.min(HARD_MAXIMUMS.wallSeconds, DEFAULT_MAX_WALL_SECONDS)
  const capped: SandboxLimits = {
    ...HARD_MAXIMUMS,
    wallSeconds,
    cpuSeconds: Math.floor(wallSeconds * Math.max(1, host.cpus) / slots),
    memoryMb: Math.floor(host.memoryMb * HOST_SHARE / slots),
    workspaceMb: Math.floor(host.diskFreeMb * HOST_SHARE / slots)
  }
  capped.fileMb = capped.workspaceMb
  for (const key of Object.keys(capped) as Array<keyof SandboxLimits>) {
    capped[key] = Math.max(MINIMUMS[key], Math.min(HARD_MAXIMUMS[key], capped[key]))
  }
  return capped
}
