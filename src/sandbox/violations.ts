import { componentLogger } from '../util/logger.js'
import type { CgroupUsage } from './cgroups.js'
import { describeLimit, MiB } from './limits.js'
import { descendants, readProcessTable } from './proc.js'
import type { SandboxLimits } from './types.js'

const log = componentLogger('sandbox:monitor')

/** Why a run was ended before its steps finished on their own. */
export interface Violation {
  status: 'error' | 'timeout'
  /** Said in the outcome's `reason` and in the log. */
  reason: string
}

export function limitViolation (limits: SandboxLimits, key: keyof SandboxLimits): Violation {
  return { status: key === 'wallSeconds' ? 'timeout' : 'error', reason: describeLimit(key, limits[key]) }
}

/** Signals the kernel sends for rlimits, by number (x86 and arm alike). */
const SIGXCPU = 24
const SIGXFSZ = 25

/**
 * What a step's exit says about rlimits: killed by SIGXCPU is the CPU limit,
 * by SIGXFSZ the file size limit. Under bubblewrap (and sh) a death by signal
 * n shows as exit 128+n, so those codes count too.
 */
export function exitViolation (limits: SandboxLimits, code: number | null, signal: string | null): Violation | undefined {
  if (signal === 'SIGXCPU' || code === 128 + SIGXCPU) return limitViolation(limits, 'cpuSeconds')
  if (signal === 'SIGXFSZ' || code === 128 + SIGXFSZ) return limitViolation(limits, 'fileMb')
  return undefined
}

/** What the kernel's cgroup counters say: any OOM kill or refused fork ends the run, as does the CPU total. */
export function cgroupViolation (limits: SandboxLimits, usage: CgroupUsage): Violation | undefined {
  if (usage.oomKills > 0) return limitViolation(limits, 'memoryMb')
  if (usage.pidsMaxHits > 0) return limitViolation(limits, 'processes')
  if (usage.cpuSeconds > limits.cpuSeconds) return limitViolation(limits, 'cpuSeconds')
  return undefined
}

/**
 * The fallback without cgroups: a look at the step's process tree in /proc
 * (tasks, resident memory, CPU) each time `check` is called. Processes that
 * left the tree (a daemon reparented to init) escape it: under bubblewrap
 * they cannot, the pid namespace holds them. CPU of finished steps is carried
 * over as last seen.
 */
export class ProcessTreeLimits {
  private spent = 0
  private current = 0

  /** `overhead`: tasks of the sandbox itself (bwrap and its init), not charged to the job. */
  constructor (private readonly limits: SandboxLimits, private readonly overhead: number) {}

  async check (rootPid: number | undefined): Promise<Violation | undefined> {
    if (rootPid === undefined) return undefined
    const tree = descendants(await readProcessTable(), rootPid)
    if (tree.length === 0) return undefined
    let tasks = 0
    let rss = 0
    let cpu = 0
    for (const info of tree) {
      tasks += Math.max(1, info.threads)
      rss += info.rssBytes
      cpu += info.cpuSeconds
    }
    this.current = Math.max(this.current, cpu)
    log('tree of %d: %d tasks, %d MB resident, %d s CPU', rootPid, tasks, Math.round(rss / MiB), Math.round(cpu))
    if (tasks - this.overhead >= this.limits.processes) return limitViolation(this.limits, 'processes')
    if (rss > this.limits.memoryMb * MiB) return limitViolation(this.limits, 'memoryMb')
    if (this.spent + this.current > this.limits.cpuSeconds) return limitViolation(this.limits, 'cpuSeconds')
    return undefined
  }

  stepEnded (): void {
    this.spent += this.current
    this.current = 0
  }
}
