import { readFileSync } from 'node:fs'
import { MiB } from './limits.js'
import { probeOutput } from './host.js'
import type { SandboxLimits } from './types.js'

/** The rlimits a step starts with (the hard limits, set before any drop of privilege, cannot be raised again). */
export interface Rlimits {
  cpuSoft: number
  /** One second past the soft limit: SIGXCPU first, SIGKILL if it is ignored. */
  cpuHard: number
  fileBytes: number
  openFiles: number
  /** Per-process data backstop, when no memory cgroup bounds the run. */
  dataBytes?: number
}

export function rlimitsFor (limits: SandboxLimits, options: { dataBackstop: boolean, openFilesCeiling?: number }): Rlimits {
  const rlimits: Rlimits = {
    cpuSoft: limits.cpuSeconds,
    cpuHard: limits.cpuSeconds + 1,
    fileBytes: limits.fileMb * MiB,
    openFiles: Math.min(limits.openFiles, options.openFilesCeiling ?? Number.MAX_SAFE_INTEGER)
  }
  // No single process past twice the memory limit: the /proc monitor's backstop.
  if (options.dataBackstop) rlimits.dataBytes = (2 * limits.memoryMb + 64) * MiB
  return rlimits
}

/**
 * The rlimits as `ulimit` builtins of /bin/sh, saving prlimit's exec on every
 * step. Units are POSIX's (-f in 512-byte blocks, -d in KiB), as dash and
 * bash-as-sh use; `shellUlimitUnitsArePosix()` checks it once.
 */
export function ulimitScript (rlimits: Rlimits): string {
  const commands = [
    `ulimit -S -t ${rlimits.cpuSoft}`,
    `ulimit -H -t ${rlimits.cpuHard}`,
    'ulimit -c 0',
    `ulimit -f ${Math.floor(rlimits.fileBytes / 512)}`,
    `ulimit -n ${rlimits.openFiles}`
  ]
  if (rlimits.dataBytes !== undefined) commands.push(`ulimit -d ${Math.floor(rlimits.dataBytes / 1024)}`)
  return `${commands.join(' && ')} || exit 125`
}

export function prlimitArgs (prlimit: string, rlimits: Rlimits): string[] {
  const args = [prlimit, '--core=0', `--cpu=${rlimits.cpuSoft}:${rlimits.cpuHard}`, `--fsize=${rlimits.fileBytes}`, `--nofile=${rlimits.openFiles}`]
  if (rlimits.dataBytes !== undefined) args.push(`--data=${rlimits.dataBytes}`)
  return [...args, '--']
}

/** Whether /bin/sh's ulimit takes -f in 512-byte blocks and -d in KiB, read back from /proc. */
export async function shellUlimitUnitsArePosix (): Promise<boolean> {
  const text = await probeOutput('/bin/sh', ['-c', 'ulimit -f 2048 && ulimit -d 2048 && cat /proc/self/limits'])
  if (text === undefined) return false
  return /^Max file size\s+1048576\s/m.test(text) && /^Max data size\s+2097152\s/m.test(text)
}

/** This process's hard limit on open files: a node that is not root cannot give a step more. */
export function openFilesHardLimit (): number | undefined {
  try {
    const line = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1]
    return line === undefined || line === 'unlimited' ? undefined : Number(line)
  } catch {
    return undefined
  }
}
