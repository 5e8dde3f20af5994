import { statfs } from 'node:fs/promises'
import { availableParallelism, totalmem } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { admit, HARD_MAXIMUMS, loadPolicy, measureHost, type Executor, type HostCapacity } from '../../src/sandbox/index.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, step } from '../sandbox/helpers.js'

const teardown = useTeardown()
const STRANGER = 'c'.repeat(64)
let executor: Executor

beforeAll(async () => {
  executor = await bubblewrap()
})

describe('default limits are capped by the host (issue 12, item 6)', () => {
  it('a stranger\'s job asking for the hard maximums is refused by the default policy, and gets no more than the host has by default', async () => {
    const home = await tempDir(teardown)
    const host = await measureHost(home, 1)
    // No policy file: the defaults a volunteer gets by just joining.
    const policy = await loadPolicy(join(home, 'policy.json'), host)
    const greedy = admit(policy, { network: false, root: false, limits: { ...HARD_MAXIMUMS }, submitter: STRANGER })
    expect(greedy.ok).toBe(false)
    // Time is capped on every host; memory and disk by what this one has (a huge host may reach the hard maximums).
    expect(policy.maxLimits.wallSeconds).toBeLessThan(HARD_MAXIMUMS.wallSeconds)
    expect(policy.maxLimits.cpuSeconds).toBeLessThan(HARD_MAXIMUMS.cpuSeconds)
    const totalMb = Math.floor(totalmem() / 1024 / 1024)
    const fs = await statfs(home)
    const freeMb = Math.floor(fs.bavail * fs.bsize / 1024 / 1024)
    expect(policy.maxLimits.memoryMb).toBeLessThanOrEqual(totalMb / 2)
    expect(policy.maxLimits.workspaceMb).toBeLessThanOrEqual(freeMb / 2)
    expect(policy.maxLimits.cpuSeconds).toBeLessThanOrEqual(policy.maxLimits.wallSeconds * availableParallelism())
  })

  it('what the most a default node admits looks like inside the sandbox: /tmp and /dev/shm no larger than the memory cap', async () => {
    const home = await tempDir(teardown)
    const policy = await loadPolicy(join(home, 'policy.json'), await measureHost(home, 1))
    const most = admit(policy, { network: false, root: false, limits: { ...policy.maxLimits }, submitter: STRANGER })
    expect(most.ok).toBe(true)
    if (!most.ok) return
    const outcome = await runJob(executor, teardown, home, {
      ...step('df -k /tmp /dev/shm | tail -n 2'),
      limits: { ...most.limits, wallSeconds: 20, cpuSeconds: 20 }
    })
    expect(outcome.status, logText(outcome)).toBe('pass')
    const sizes = [...logText(outcome).matchAll(/^tmpfs\s+(\d+)/gm)].map((m) => Number(m[1]) / 1024)
    expect(sizes).toHaveLength(2)
    for (const mb of sizes) expect(mb).toBeLessThanOrEqual(policy.maxLimits.memoryMb)
  })

  it('more slots share the host: each slot\'s caps shrink in proportion', () => {
    const host: HostCapacity = { memoryMb: 24_000, diskFreeMb: 80_000, cpus: 2, slots: 1 }
    return Promise.all([
      loadPolicy('/nonexistent/policy.json', host),
      loadPolicy('/nonexistent/policy.json', { ...host, slots: 4 })
    ]).then(([one, four]) => {
      expect(one.maxLimits.memoryMb).toBe(12_000)
      expect(four.maxLimits.memoryMb).toBe(3_000)
      expect(four.maxLimits.workspaceMb).toBe(10_000)
    })
  })
})
