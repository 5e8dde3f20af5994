import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { BubblewrapExecutor } from '../src/sandbox/bubblewrap-executor.js'
import { createExecutor, DEFAULT_LIMITS, type Executor, type RunRequest } from '../src/sandbox/index.js'
import { round, spread } from './stats.js'

const STEPS = 60
const RUNS = 20
const EMPTY_TAR = Buffer.alloc(1024)

async function timeSpawn (file: string, args: string[]): Promise<number> {
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'ignore' })
    child.once('error', reject)
    child.once('exit', () => { resolve() })
  })
  return performance.now() - started
}

/** bwrap by itself: the same namespaces, a read-only /usr, nothing of buildhaus around it. */
const BARE_BWRAP = ['--unshare-all', '--die-with-parent', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin',
  '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--dev', '/dev', '--proc', '/proc', '--', '/bin/sh', '-c', 'true']

/**
 * Per-step times of one run of `true` steps, from the live log: "$ true" is
 * written just before the launch, the trailer once the step is cleaned up.
 * The first step (handed to the warm sandbox) is left out: these are steps launched fresh.
 */
async function stepTimes (executor: Executor, workRoot: string): Promise<{ steps: number[], run: number }> {
  const steps: number[] = []
  let began = 0
  const started = performance.now()
  const outcome = await executor.run({
    source: EMPTY_TAR,
    steps: Array.from({ length: STEPS }, (_, i) => ({ name: `s${i}`, run: 'true' })),
    artifacts: [],
    network: false,
    root: false,
    limits: { ...DEFAULT_LIMITS },
    workRoot,
    onLog: (text) => {
      if (text.startsWith('$ ')) began = performance.now()
      else if (text.startsWith('[step ')) steps.push(performance.now() - began)
    }
  })
  const run = performance.now() - started
  await outcome.dispose()
  if (outcome.status !== 'pass') throw new Error(`the benchmark job did not pass: ${outcome.reason ?? outcome.status}`)
  return { steps: steps.slice(1), run }
}

/** The benchmark's job: one step `true`, no source, no artifacts, default limits. */
function trivialJob (workRoot: string): RunRequest {
  return { source: EMPTY_TAR, steps: [{ name: 'only', run: 'true' }], artifacts: [], network: false, root: false, limits: { ...DEFAULT_LIMITS }, workRoot }
}

/**
 * A one-step job started once the work root's spare run and its warm step
 * are ready, as on a node idle between jobs: its first step's time (as in
 * stepTimes) and the whole run's.
 */
async function warmRun (executor: BubblewrapExecutor, workRoot: string): Promise<{ step: number, run: number }> {
  await executor.spareReady(workRoot)
  let began = 0
  let step = 0
  const started = performance.now()
  const outcome = await executor.run({
    ...trivialJob(workRoot),
    sourceDateEpoch: 1_700_000_000,
    onLog: (text) => {
      if (text.startsWith('$ ')) began = performance.now()
      else if (text.startsWith('[step ')) step = performance.now() - began
    }
  })
  const run = performance.now() - started
  await outcome.dispose()
  if (outcome.status !== 'pass') throw new Error(`the benchmark job did not pass: ${outcome.reason ?? outcome.status}`)
  return { step, run }
}

async function wholeRun (executor: Executor, workRoot: string): Promise<number> {
  const started = performance.now()
  const outcome = await executor.run(trivialJob(workRoot))
  const ms = performance.now() - started
  await outcome.dispose()
  return ms
}

/**
 * Start overhead of a step under the bubblewrap executor, beside a plain
 * spawn of the same command (`sh -c true`) and a bare bwrap measured in the
 * same run, interleaved so that machine noise falls on all alike.
 */
export interface SandboxBenchOptions {
  /** Interleaved rounds of plain spawns, bare bwraps, a 60-step run and whole runs (default 3). */
  rounds?: number
}

export async function benchSandbox (options: SandboxBenchOptions = {}): Promise<object> {
  const rounds = options.rounds ?? 3
  const executor = await createExecutor('bubblewrap') as BubblewrapExecutor
  const workRoot = await mkdtemp(join(tmpdir(), 'buildhaus-bench-'))
  try {
    const plain: number[] = []
    const bare: number[] = []
    for (let i = 0; i < 5; i++) {
      await timeSpawn('/bin/sh', ['-c', 'true'])
      await timeSpawn('bwrap', BARE_BWRAP)
    }
    const executorSteps: number[] = []
    const runs: number[] = []
    const warmSteps: number[] = []
    const warmRuns: number[] = []
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < STEPS; i++) {
        plain.push(await timeSpawn('/bin/sh', ['-c', 'true']))
        bare.push(await timeSpawn('bwrap', BARE_BWRAP))
      }
      executorSteps.push(...(await stepTimes(executor, workRoot)).steps)
      for (let i = 0; i < RUNS / 2; i++) runs.push(await wholeRun(executor, workRoot))
      for (let i = 0; i < RUNS; i++) {
        const { step, run } = await warmRun(executor, workRoot)
        warmSteps.push(step)
        warmRuns.push(run)
      }
    }
    const firstSteps = { ...executor.firstSteps }
    const plainSpread = spread(plain, 2)
    const stepSpread = spread(executorSteps, 2)
    const bareSpread = spread(bare, 2)
    const warmSpread = spread(warmSteps, 2)
    const env = await executor.fingerprint()
    return {
      what: 'per-step start overhead: `sh -c true` as one step under the bubblewrap executor vs a plain child_process.spawn',
      samples: { plain: plain.length, bareBwrap: bare.length, executorStep: executorSteps.length, wholeRun: runs.length, warmFirstStep: warmSteps.length },
      sandbox: { bwrap: env.bwrap, limits: env.limits, uid: process.getuid?.() },
      baseline: { plainSpawnMs: plainSpread },
      bareBwrapMs: bareSpread,
      executorStepMs: stepSpread,
      executorStepNote: 'steps launched fresh (a run\'s second and later steps, or a first step whose run is shaped otherwise than the warm sandbox)',
      warmFirstStepMs: warmSpread,
      warmFirstStepOverPlainMs: { p50: round(warmSpread.p50 - plainSpread.p50, 2), p95: round(warmSpread.p95 - plainSpread.p95, 2) },
      warmFirstStepNote: 'a job\'s first step handed to the sandbox its spare run set up ahead, the node idle between jobs (spare ready)',
      firstSteps,
      overPlainMs: { p50: round(stepSpread.p50 - plainSpread.p50, 2), p95: round(stepSpread.p95 - plainSpread.p95, 2) },
      ratioToPlain: { p50: round(stepSpread.p50 / plainSpread.p50, 2), p95: round(stepSpread.p95 / plainSpread.p95, 2) },
      overBareBwrapMs: { p50: round(stepSpread.p50 - bareSpread.p50, 2) },
      goal: { overPlainMsAtMost: 15, met: stepSpread.p50 - plainSpread.p50 <= 15 },
      wholeRunMs: spread(runs, 2),
      wholeRunNote: 'a one-step job end to end: workspace, unpack, cgroup, step, artifact walk, dispose; back to back (the next spare may still be warming)',
      wholeRunWarmMs: spread(warmRuns, 2),
      wholeRunWarmNote: 'the same, each started once the spare run and its warm step are ready'
    }
  } finally {
    await executor.close()
    await rm(workRoot, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchSandbox(), null, 2))
  // libp2p sockets and worker threads may outlive the figures.
  process.exit(0)
}
