import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Executor } from '../../src/sandbox/index.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, step } from './helpers.js'
import { processesWith } from './processes.js'

const teardown = useTeardown()
let executor: Executor

// Without cgroups, a root node's rlimits count every process of the build
// user: this file uses a build uid of its own so that jobs of other test
// files running at the same time do not share its process budget.
const BUILD_UID = 65533

beforeAll(async () => {
  executor = await bubblewrap({ cgroups: false, buildUid: BUILD_UID, buildGid: BUILD_UID })
})

describe('bubblewrap without cgroups (rlimits and the /proc monitor)', () => {
  it('says so in its fingerprint', async () => {
    expect((await executor.fingerprint()).limits).toBe('rlimits')
  })

  it('bounds processes in the kernel too, inside the sandbox where the count is the job\'s own', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, { ...step('grep "Max processes" /proc/self/limits'), limits: { processes: 32 } })
    expect(logText(outcome)).toMatch(/Max processes\s+66\s+66/)
  })

  it('ends a flood of processes with the process limit', async () => {
    const work = await tempDir(teardown)
    const token = `flood-${randomBytes(6).toString('hex')}`
    // A subshell forks sleepers until RLIMIT_NPROC refuses (then dash exits); the sleepers stay, so
    // the job sits at the rlimit until the monitor sees it past the limit. The job's first process
    // never forks again.
    const outcome = await runJob(executor, teardown, work, {
      ...step(`( while :; do sleep 100 & done ) & exec sleep 1000 # ${token}`),
      limits: { processes: 32 }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('process limit (32)')
    expect(await processesWith(token)).toEqual([])
  })

  it('holds a fork bomb whose copies exit at once to the process rlimit', async () => {
    const work = await tempDir(teardown)
    const token = `bomb-${randomBytes(6).toString('hex')}`
    const outcome = await runJob(executor, teardown, work, {
      ...step(`bomb() { bomb | bomb & }; bomb; wait; sleep 1; echo survived; : ${token}`),
      limits: { processes: 32 }
    })
    // It dies out against RLIMIT_NPROC, faster than a poll may see it at the limit; the job's
    // shell may die with it (dash exits when a fork fails). Contained either way, and nothing is left.
    expect(['pass', 'fail', 'error']).toContain(outcome.status)
    if (outcome.status === 'error') expect(outcome.reason).toBe('process limit (32)')
    expect(await processesWith(token)).toEqual([])
    const after = await runJob(executor, teardown, work, { ...step('echo still here') })
    expect(after.status).toBe('pass')
  })

  it('ends a job whose memory keeps growing', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('perl -e \'my @keep; while (1) { push @keep, "x" x (4 * 1024 * 1024); select(undef, undef, undef, 0.02) }\''),
      limits: { memoryMb: 64 }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('memory limit (64 MB)')
  })

  it('ends a job burning CPU past its limit', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, { ...step('while :; do :; done'), limits: { cpuSeconds: 1, wallSeconds: 30 } })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('cpu time limit (1 s)')
  })

  it('still leaves no daemon behind', async () => {
    const work = await tempDir(teardown)
    const token = `daemon-${randomBytes(6).toString('hex')}`
    const outcome = await runJob(executor, teardown, work, {
      ...step(`( setsid sh -c 'touch /build/up; while :; do sleep 0.1; done; : ${token}' </dev/null >/dev/null 2>&1 & ); while [ ! -f up ]; do sleep 0.05; done; echo parent exits`)
    })
    expect(outcome.status).toBe('pass')
    expect(logText(outcome)).toContain('parent exits')
    expect(await processesWith(token)).toEqual([])
  })
})
