import { spawn, type ChildProcess } from 'node:child_process'

/**
 * What the benches do with the processes they start: stop one politely, and
 * record where a set of them spends CPU.
 */

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited (and, for `close`, its pipes have closed). */
export async function stopChild (child: ChildProcess, graceMs: number, until: 'exit' | 'close' = 'exit'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const ended = new Promise((resolve) => child.once(until, resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await ended
  clearTimeout(timer)
}

/**
 * BENCH_PERF_RECORD=FILE: record where the processes `pids` spend CPU
 * (`perf record -e cpu-clock`, on-CPU samples only, so that a busy machine
 * does not inflate them; their Node.js started with --perf-basic-prof names
 * JavaScript functions). For finding costs, not part of the figures;
 * undefined when the variable is not set.
 */
export function startPerfRecord (pids: number[], samplesPerSecond: number): { stop: () => Promise<void> } | undefined {
  const file = process.env.BENCH_PERF_RECORD
  if (file === undefined) return undefined
  const child = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(samplesPerSecond), '-g', '-o', file, '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'inherit'] })
  return {
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      // perf writes its file on SIGINT.
      child.kill('SIGINT')
      await exited
    }
  }
}
