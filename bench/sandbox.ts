import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import type { BubblewrapExecutor } from '../src/sandbox/bubblewrap-executor.js'
import { createExecutor, DEFAULT_LIMITS, type Executor, type RunRequest } from '../src/sandbox/index.js'
import { HOST_HELPER_IDLE_MS } from '../src/sandbox/host-process.js'
import { seccompArchOf, seccompProgram } from '../src/sandbox/seccomp.js'
import { feedPipe } from '../src/sandbox/step-process.js'
import { makeCpuGroup, type CpuGroup } from './cpu-group.js'
import { round, spread } from './stats.js'

const STEPS = 60
const RUNS = 20
const EMPTY_TAR = Buffer.alloc(1024)

/** How long `file args` takes to start and exit; with `seccomp`, fed on fd 5 as the executor feeds bwrap's filter. */
async function timeSpawn (file: string, args: string[], seccomp?: Buffer): Promise<number> {
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn(file, args, { stdio: seccomp === undefined ? 'ignore' : ['ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'pipe'] })
    if (seccomp !== undefined) feedPipe((child.stdio as unknown as Array<Writable | null>)[5], seccomp)
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
async function stepTimes (executor: Executor, workRoot: string, count = STEPS): Promise<{ steps: number[], run: number }> {
  const steps: number[] = []
  let began = 0
  const started = performance.now()
  const outcome = await executor.run({
    source: EMPTY_TAR,
    steps: Array.from({ length: count }, (_, i) => ({ name: `s${i}`, run: 'true' })),
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

/** prctl and seccomp in the kernel's tables (syscall_64.tbl; the generic table for aarch64). */
const LOAD_CALLS: Record<string, [number, number]> = { x86_64: [157, 317], aarch64: [167, 277] }

/**
 * What the kernel takes to install the filter (the JIT and its per-call
 * cache), measured inside one process with perl's syscall(): the first
 * install and the median of 50 stacked ones, µs. bwrap does the same once
 * per sandbox; a spawn's noise on a loaded machine hides it otherwise.
 */
function kernelLoadUs (): { first: number, median: number } | undefined {
  const arch = seccompArchOf()
  if (arch === undefined) return undefined
  const [prctl, seccomp] = LOAD_CALLS[arch]!
  const script = [
    'use Time::HiRes qw(time);',
    'my $prog = pack("H*", $ARGV[0]); my $n = length($prog) / 8;',
    `syscall(${prctl}, 38, 1, 0, 0, 0) == 0 or die "prctl: $!";`,
    'my $fprog = pack("S x6 J", $n, unpack("J", pack("p", $prog)));',
    `my @t; for (1..50) { my $t0 = time; syscall(${seccomp}, 1, 0, $fprog) == 0 or die "seccomp: $!"; push @t, time - $t0 }`,
    'my $first = $t[0]; @t = sort { $a <=> $b } @t; printf "%.1f %.1f\n", $first * 1e6, $t[25] * 1e6;'
  ].join('\n')
  try {
    const [first, median] = execFileSync('perl', ['-e', script, seccompProgram(arch).toString('hex')], { encoding: 'utf8' }).trim().split(' ').map(Number)
    return { first: first!, median: median! }
  } catch {
    return undefined
  }
}

/** What making the filter costs, once per node (the mean of 1,000 makings). */
function generationMs (): number | undefined {
  const arch = seccompArchOf()
  if (arch === undefined) return undefined
  const started = performance.now()
  for (let i = 0; i < 1000; i++) seccompProgram(arch)
  return round((performance.now() - started) / 1000, 4)
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
  // Joined before the executors start, so that their spawn helpers and every sandbox process count (cpuPerRun).
  const made = await makeCpuGroup(`buildhaus-bench-sandbox-${process.pid}`)
  const group = 'unavailable' in made ? undefined : made
  await group?.join()
  const executor = await createExecutor('bubblewrap') as BubblewrapExecutor
  // The same sandbox without the system call filter (seccomp.ts), to measure what loading it costs a step.
  const unfiltered = await createExecutor('bubblewrap', { seccomp: false }) as BubblewrapExecutor
  const workRoot = await mkdtemp(join(tmpdir(), 'buildhaus-bench-'))
  const unfilteredRoot = await mkdtemp(join(tmpdir(), 'buildhaus-bench-'))
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
    const unfilteredSteps: number[] = []
    const unfilteredWarmSteps: number[] = []
    const filteredBare: number[] = []
    const bareAlongside: number[] = []
    const arch = seccompArchOf()
    const program = arch === undefined ? undefined : seccompProgram(arch)
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < STEPS; i++) {
        plain.push(await timeSpawn('/bin/sh', ['-c', 'true']))
        bare.push(await timeSpawn('bwrap', BARE_BWRAP))
      }
      // With and without the filter in alternating runs of a quarter of the steps, so that the machine's load falls on both alike.
      for (let chunk = 0; chunk < 4; chunk++) {
        executorSteps.push(...(await stepTimes(executor, workRoot, STEPS / 4 + 1)).steps)
        unfilteredSteps.push(...(await stepTimes(unfiltered, unfilteredRoot, STEPS / 4 + 1)).steps)
      }
      for (let i = 0; i < STEPS; i++) {
        if (program !== undefined) filteredBare.push(await timeSpawn('bwrap', ['--seccomp', '5', ...BARE_BWRAP], program))
        bareAlongside.push(await timeSpawn('bwrap', BARE_BWRAP))
      }
      for (let i = 0; i < RUNS / 2; i++) runs.push(await wholeRun(executor, workRoot))
      for (let i = 0; i < RUNS; i++) {
        const { step, run } = await warmRun(executor, workRoot)
        warmSteps.push(step)
        warmRuns.push(run)
        unfilteredWarmSteps.push((await warmRun(unfiltered, unfilteredRoot)).step)
      }
    }
    const cpuPerRun = group === undefined ? { unavailable: (made as { unavailable: string }).unavailable } : await machineCpuPerRun(executor, workRoot, group)
    const firstSteps = { ...executor.firstSteps }
    const plainSpread = spread(plain, 2)
    const stepSpread = spread(executorSteps, 2)
    const bareSpread = spread(bare, 2)
    const warmSpread = spread(warmSteps, 2)
    const env = await executor.fingerprint()
    const unfilteredSpread = spread(unfilteredSteps, 2)
    const unfilteredWarmSpread = spread(unfilteredWarmSteps, 2)
    return {
      what: 'per-step start overhead: `sh -c true` as one step under the bubblewrap executor vs a plain child_process.spawn',
      samples: { plain: plain.length, bareBwrap: bare.length, executorStep: executorSteps.length, wholeRun: runs.length, warmFirstStep: warmSteps.length },
      sandbox: { bwrap: env.bwrap, limits: env.limits, seccomp: env.seccomp, uid: process.getuid?.() },
      baseline: { plainSpawnMs: plainSpread },
      bareBwrapMs: bareSpread,
      executorStepMs: stepSpread,
      executorStepNote: 'steps launched fresh (a run\'s second and later steps, or a first step whose run is shaped otherwise than the warm sandbox)',
      warmFirstStepMs: warmSpread,
      warmFirstStepOverPlainMs: { p50: round(warmSpread.p50 - plainSpread.p50, 2), p95: round(warmSpread.p95 - plainSpread.p95, 2) },
      warmFirstStepNote: 'a job\'s first step handed to the sandbox its spare run set up ahead, the node idle between jobs (spare ready)',
      firstSteps,
      cpuPerRun,
      overPlainMs: { p50: round(stepSpread.p50 - plainSpread.p50, 2), p95: round(stepSpread.p95 - plainSpread.p95, 2) },
      ratioToPlain: { p50: round(stepSpread.p50 / plainSpread.p50, 2), p95: round(stepSpread.p95 / plainSpread.p95, 2) },
      overBareBwrapMs: { p50: round(stepSpread.p50 - bareSpread.p50, 2) },
      goal: { overPlainMsAtMost: 15, met: stepSpread.p50 - plainSpread.p50 <= 15 },
      wholeRunMs: spread(runs, 2),
      wholeRunNote: 'a one-step job end to end: workspace, unpack, cgroup, step, artifact walk, dispose; back to back (the next spare may still be warming)',
      wholeRunWarmMs: spread(warmRuns, 2),
      wholeRunWarmNote: 'the same, each started once the spare run and its warm step are ready',
      seccomp: {
        what: 'the same steps under an executor that loads no system call filter, interleaved with the filtered ones',
        bareBwrapWithFilterMs: filteredBare.length === 0 ? undefined : spread(filteredBare, 2),
        bareBwrapAlongsideMs: spread(bareAlongside, 2),
        costBareBwrapMs: filteredBare.length === 0 ? undefined : { p50: round(spread(filteredBare, 2).p50 - spread(bareAlongside, 2).p50, 2), mean: round(spread(filteredBare, 2).mean - spread(bareAlongside, 2).mean, 2) },
        withoutFilterStepMs: unfilteredSpread,
        withoutFilterWarmFirstStepMs: unfilteredWarmSpread,
        costFreshStepMs: { p50: round(stepSpread.p50 - unfilteredSpread.p50, 2), p95: round(stepSpread.p95 - unfilteredSpread.p95, 2) },
        costWarmFirstStepMs: { p50: round(warmSpread.p50 - unfilteredWarmSpread.p50, 2), p95: round(warmSpread.p95 - unfilteredWarmSpread.p95, 2) },
        generateOnceMs: generationMs(),
        kernelLoadUs: kernelLoadUs()
      }
    }
  } finally {
    await executor.close()
    await unfiltered.close()
    await rm(workRoot, { recursive: true, force: true })
    await rm(unfilteredRoot, { recursive: true, force: true })
    if (group !== undefined) {
      await group.leave()
      // The shared helper of host tools (host-process.ts), started in the group by the executors' self-test, exits after its idle time.
      await group.remove(HOST_HELPER_IDLE_MS + 10_000).catch((err: unknown) => { process.stderr.write(`bench/sandbox: ${String(err)}\n`) })
    }
  }
}

/**
 * What one warm run of a one-step job costs the whole machine, counted by a
 * cgroup holding this process, its spawn helper and every process of the
 * sandboxes (bench/cpu-group.ts): the executor's own work, the helper's
 * fork, bwrap's processes and namespaces, the shells and the step, whoever
 * reaps them. Beside it, a plain spawn of `sh -c true` counted the same
 * way; alternating blocks of RUNS.
 */
async function machineCpuPerRun (executor: BubblewrapExecutor, workRoot: string, group: CpuGroup): Promise<object> {
  const runs: number[] = []
  const plain: number[] = []
  for (let block = 0; block < 3; block++) {
    let from = await group.usageSeconds()
    for (let i = 0; i < RUNS; i++) await warmRun(executor, workRoot)
    runs.push((await group.usageSeconds() - from) * 1000 / RUNS)
    from = await group.usageSeconds()
    for (let i = 0; i < RUNS; i++) await timeSpawn('/bin/sh', ['-c', 'true'])
    plain.push((await group.usageSeconds() - from) * 1000 / RUNS)
  }
  const median = (values: number[]): number => round([...values].sort((a, b) => a - b)[values.length >> 1]!, 2)
  return {
    warmRunCpuMs: median(runs),
    plainSpawnCpuMs: median(plain),
    ratio: round(median(runs) / median(plain), 2),
    note: `CPU ms of the whole machine per one-step run of \`true\` (each started once the spare is ready) and per plain spawn of \`sh -c true\`, medians of 3 alternating blocks of ${RUNS}, counted by a cgroup v1 cpuacct group holding everything they started`
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchSandbox(), null, 2))
  // libp2p sockets and worker threads may outlive the figures.
  process.exit(0)
}
