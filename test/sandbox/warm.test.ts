import { createHash } from 'node:crypto'
import { readFile, readlink } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BubblewrapExecutor } from '../../src/sandbox/bubblewrap-executor.js'
import type { RunOutcome } from '../../src/sandbox/index.js'
import { waitFor } from '../../src/util/wait.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, source, step, type JobOptions } from './helpers.js'
import { sandboxProcesses, stillRunning } from './processes.js'

const teardown = useTeardown()
let executor: BubblewrapExecutor

beforeAll(async () => {
  executor = await bubblewrap() as BubblewrapExecutor
})

afterAll(async () => {
  await executor.close()
})

interface Launched { outcome: RunOutcome, warm: boolean }

/** Run a job once the work root's spare and its warm step are ready, as on a node idle between jobs; and say how its first step started. */
async function runReady (work: string, job: JobOptions, on = executor): Promise<Launched> {
  await on.spareReady(work)
  const { warm, fresh } = on.firstSteps
  const outcome = await runJob(on, teardown, work, job)
  expect(on.firstSteps.warm + on.firstSteps.fresh).toBe(warm + fresh + 1)
  return { outcome, warm: on.firstSteps.warm > warm }
}

/** SIGKILL every process of the given sandboxes (the whole tree, or only the shells at its leaves). */
function kill (processes: Iterable<string>): void {
  for (const key of processes) {
    try { process.kill(Number(key.split(':')[0]), 'SIGKILL') } catch { /* gone */ }
  }
}

/** The log without what differs from run to run: the step times, and the numbers of pipes, sockets and namespaces. */
function timeless (outcome: RunOutcome): string {
  return logText(outcome).replace(/, \d+ ms\]/g, ', … ms]').replace(/\b(pipe|socket|net|user):\[\d+\]/g, '$1:[…]')
}

/** What a step can see of its sandbox (no pids but its own, no times). */
const PROBE = [
  'id', 'echo "$$"', 'umask', 'ulimit -a', 'cat /proc/self/limits', 'env | sort', 'pwd', 'ls -a /', 'hostname',
  'awk \'{ print $5, $6, $9 }\' /proc/self/mountinfo', 'cat /etc/passwd /etc/group', 'cat in.txt',
  'for fd in /proc/self/fd/*; do echo "$fd $(readlink "$fd")"; done', 'stat -L -c "%t:%T %F" /dev/stdin',
  'readlink /proc/self/ns/net /proc/self/ns/user', 'mkdir -p out && echo first > out/first.txt'
].join('; ')

describe('the warm step of the bubblewrap executor', () => {
  it('hands a job\'s first step to a sandbox started ahead, with the same result as a fresh launch', async () => {
    const work = await tempDir(teardown)
    const job: JobOptions = {
      source: await source(teardown, { 'in.txt': 'input\n' }),
      steps: [{ name: 'probe', run: PROBE }, { name: 'second', run: 'echo second > out/second.txt; cat out/first.txt' }],
      artifacts: ['out/**'],
      sourceDateEpoch: 1_700_000_000
    }
    const warm = await runReady(work, job)
    expect(warm.warm).toBe(true)
    expect(warm.outcome.status).toBe('pass')
    expect(logText(warm.outcome)).toContain('SOURCE_DATE_EPOCH=1700000000\n')

    // The same job launched fresh: its warm sandbox killed before it could be used.
    await executor.spareReady(work)
    kill(await sandboxProcesses())
    const fresh = await runReady(work, job)
    expect(fresh.warm).toBe(false)
    expect(timeless(fresh.outcome)).toBe(timeless(warm.outcome))
    expect(fresh.outcome.steps.map(({ name, exit }) => ({ name, exit }))).toEqual(warm.outcome.steps.map(({ name, exit }) => ({ name, exit })))
    const artifacts = (outcome: RunOutcome): unknown => outcome.artifacts.map(({ path, sha256, size }) => ({ path, sha256, size }))
    expect(artifacts(warm.outcome)).toEqual(artifacts(fresh.outcome))
    expect(artifacts(warm.outcome)).toHaveLength(2)
  })

  it('launches fresh a run shaped otherwise (root, network, limits), and warms the next spare for its shape', async () => {
    const work = await tempDir(teardown)
    const hostNet = await readlink('/proc/self/ns/net')
    const probe = step('id -u; ulimit -n; readlink /proc/self/ns/net; grep -c . /etc/passwd')
    const runs: Array<[JobOptions, boolean, string]> = [
      [{ ...probe }, true, `1000\n256\nnet:[`],
      [{ ...probe, root: true }, false, '0\n256\nnet:['],
      [{ ...probe, root: true }, true, '0\n256\nnet:['],
      [{ ...probe, network: true }, false, `1000\n256\n${hostNet}\n3\n`],
      [{ ...probe, network: true }, true, `1000\n256\n${hostNet}\n3\n`],
      [{ ...probe, limits: { openFiles: 100 } }, false, '1000\n100\n'],
      [{ ...probe, limits: { openFiles: 100 } }, true, '1000\n100\n']
    ]
    for (const [job, warm, expected] of runs) {
      const launched = await runReady(work, job)
      expect(launched.outcome.status).toBe('pass')
      expect(logText(launched.outcome)).toContain(expected)
      if (job.network !== true) expect(logText(launched.outcome)).not.toContain(hostNet)
      expect(logText(launched.outcome)).toContain(job.root === true ? '\n2\n' : '\n3\n')
      expect({ job, warm: launched.warm }).toEqual({ job, warm })
    }
  })

  it('hands over the command byte for byte', async () => {
    const work = await tempDir(teardown)
    const hash = 'sha256sum < /proc/$$/cmdline'
    const commands = [
      `${hash} # quotes ' " dollar $HOME $(false) \`false\` backslashes \\ \\\\ \\n unicode é ✓ 😀 \u00a0`,
      `${hash}\necho 'two\nlines' "$SOURCE_DATE_EPOCH" \\\n  joined\n\n\n`,
      `${hash}; echo ends in a dot.`,
      `${hash}; echo ends in dots..\n#.`,
      `${hash}; echo "tab\there" trailing backslash \\`,
      `${hash} #\r\n`,
      `${hash} #\n`,
      // Longer than the shell reads itself: read with cat.
      `${hash}\n: '${'é ✓ \\ $x " \\n\n'.repeat(300)}'\n\n`
    ]
    for (const run of commands) {
      const { outcome, warm } = await runReady(work, { ...step(run), sourceDateEpoch: 42 })
      expect(warm).toBe(true)
      expect(outcome.status).toBe('pass')
      const expected = createHash('sha256').update(Buffer.from(`/bin/sh\0-c\0${run}\0`)).digest('hex')
      expect({ run, log: logText(outcome) }).toEqual({ run, log: expect.stringContaining(`${expected}  -\n`) as unknown })
      if (run.includes('two\nlines')) expect(logText(outcome)).toContain('two\nlines 42 joined\n')
    }
  })

  it('still holds a warm first step to the wall-clock, disk and memory limits', async () => {
    const work = await tempDir(teardown)
    const timeout = await runReady(work, { ...step('sleep 30'), limits: { wallSeconds: 1 } })
    expect(timeout.warm).toBe(true)
    expect(timeout.outcome.status).toBe('timeout')
    const disk = await runReady(work, step('for i in 1 2 3 4 5 6; do head -c 15000000 /dev/zero > big-$i; done'))
    expect(disk.warm).toBe(true)
    expect(disk.outcome.reason).toBe('workspace limit (64 MB)')
    const memory = await runReady(work, step('perl -e \'$x = "x" x (2 * 1024 * 1024 * 1024); print length($x), "\\n"\''))
    expect(memory.warm).toBe(true)
    if ((await executor.fingerprint()).limits === 'rlimits') {
      expect(memory.outcome.status).toBe('fail')
    } else {
      expect(memory.outcome.reason).toBe('memory limit (128 MB)')
    }
  })

  it('launches fresh when the warm sandbox was killed, whole or only its shell', async () => {
    const work = await tempDir(teardown)
    // The work root's first run makes its spare.
    expect((await runReady(work, step('true'))).warm).toBe(true)
    for (const which of ['whole', 'shell'] as const) {
      await executor.spareReady(work)
      const processes = [...await sandboxProcesses()]
      expect(processes.length).toBeGreaterThanOrEqual(3)
      if (which === 'whole') {
        kill(processes)
        await waitFor(async () => (await stillRunning(processes)).length === 0, { timeoutMs: 10_000, intervalMs: 10, what: 'the killed sandboxes' })
      } else {
        // The waiting shells (bwrap itself may still be running when the job comes).
        const comm = await Promise.all(processes.map(async (key) => await readFile(`/proc/${key.split(':')[0]}/comm`, 'utf8').catch(() => '')))
        const shells = processes.filter((_, i) => comm[i]!.trim() === 'sh')
        expect(shells.length).toBeGreaterThan(0)
        kill(shells)
      }
      const { outcome, warm } = await runReady(work, step('echo built'))
      expect(warm).toBe(false)
      expect(outcome.status).toBe('pass')
      expect(logText(outcome)).toContain('\nbuilt\n')
    }
  })

  it('leaves no warm sandbox running once the executor is closed', async () => {
    const own = await bubblewrap() as BubblewrapExecutor
    const work = await tempDir(teardown)
    const others = await sandboxProcesses()
    const { warm } = await runReady(work, step('true'), own)
    expect(warm).toBe(true)
    await own.spareReady(work)
    const mine = [...await sandboxProcesses()].filter((key) => !others.has(key))
    // bwrap, the sandbox's init, the waiting shell.
    expect(mine.length).toBeGreaterThanOrEqual(3)
    await own.close()
    expect(await stillRunning(mine)).toEqual([])
  })
})
