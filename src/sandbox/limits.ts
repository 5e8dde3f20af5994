import { InvalidInputError } from '../util/errors.js'
import type { SandboxLimits } from './types.js'

export const LIMIT_KEYS = [
  'wallSeconds', 'cpuSeconds', 'memoryMb', 'processes', 'fileMb', 'openFiles', 'workspaceMb', 'logKb', 'outputMb'
] as const satisfies ReadonlyArray<keyof SandboxLimits>

/** What a job gets for each limit it does not set (capped by the node's maximum). */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  wallSeconds: 30 * 60,
  cpuSeconds: 60 * 60,
  memoryMb: 2048,
  processes: 256,
  fileMb: 1024,
  openFiles: 1024,
  workspaceMb: 4096,
  logKb: 1024,
  outputMb: 64
})

/** The most a node's policy may allow. A volunteer's policy can lower these, not raise them. */
export const HARD_MAXIMUMS: Readonly<SandboxLimits> = Object.freeze({
  wallSeconds: 6 * 60 * 60,
  cpuSeconds: 24 * 60 * 60,
  memoryMb: 65536,
  processes: 4096,
  fileMb: 16384,
  openFiles: 65536,
  workspaceMb: 65536,
  logKb: 16384,
  outputMb: 1024
})

/** Below these the sandbox itself cannot start (bwrap and sh need a few files and processes). */
export const MINIMUMS: Readonly<SandboxLimits> = Object.freeze({
  wallSeconds: 1,
  cpuSeconds: 1,
  memoryMb: 16,
  processes: 8,
  fileMb: 1,
  openFiles: 32,
  workspaceMb: 1,
  logKb: 1,
  outputMb: 1
})

/** How a limit is named in a run's `reason` and log, e.g. 'memory limit (256 MB)'. */
export function describeLimit (key: keyof SandboxLimits, value: number): string {
  switch (key) {
    case 'wallSeconds': return `wall time limit (${value} s)`
    case 'cpuSeconds': return `cpu time limit (${value} s)`
    case 'memoryMb': return `memory limit (${value} MB)`
    case 'processes': return `process limit (${value})`
    case 'fileMb': return `file size limit (${value} MB)`
    case 'openFiles': return `open files limit (${value})`
    case 'workspaceMb': return `workspace limit (${value} MB)`
    case 'logKb': return `log limit (${value} KB)`
    case 'outputMb': return `output limit (${value} MB)`
  }
}

/** Why `value` is not acceptable for `key`, or undefined when it is. */
export function limitProblem (key: keyof SandboxLimits, value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return `${key} must be a whole number (got ${String(value)})`
  if (value < MINIMUMS[key]) return `${key} must be at least ${MINIMUMS[key]} (got ${value})`
  return undefined
}

/** Throw InvalidInputError unless every limit is a whole number at or above its minimum. */
export function assertValidLimits (limits: SandboxLimits): void {
  for (const key of LIMIT_KEYS) {
    const problem = limitProblem(key, limits[key])
    if (problem !== undefined) throw new InvalidInputError(`invalid sandbox limits: ${problem}`)
  }
}

export const MiB = 1024 * 1024
