import { describe, expect, it } from 'vitest'
import { delay } from '../../src/util/wait.js'
import { collectState, compareLogs, forkEvidence, waitForMesh, waitForSameLog, waitForVerdicts, type NodeProcess } from '../helpers/cluster.js'
import { NetLab, probeNetns, startLabCluster } from '../helpers/netns.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { sortJobDir } from '../helpers/job-dir.js'

const support = await probeNetns()
if (!support.ok) console.warn(`skipping the partition tests: ${support.reason}`)

const NODES = 6
/** The fault schedule: a new random split every cycle, held for PARTITION_MS, then healed for HEALED_MS. */
const CYCLES = 6
const PARTITION_MS = 5_000
const HEALED_MS = 5_000

/** A random half of 0..n-1. */
function randomHalf (n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i).sort(() => Math.random() - 0.5)
  return order.slice(0, Math.floor(n / 2)).sort((a, b) => a - b)
}

function pick<T> (items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!
}

describe.skipIf(!support.ok)('partitions in network namespaces', () => {
  const teardown = useTeardown()

  it('random halves cut 5 s on / 5 s off for a minute while both sides take jobs: after healing every node holds every entry, every job is verified, nothing forks', async () => {
    const lab = await NetLab.create(teardown, { size: NODES })
    const nodes = await startLabCluster(teardown, lab, { args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes, { timeoutMs: 60_000 })
    const scratch = await tempDir(teardown, 'buildhaus-partition-jobs-')

    const submitted: Array<{ id: string, via: number, during: string }> = []
    let serial = 0
    const submitOn = async (node: NodeProcess, during: string): Promise<void> => {
      const index = nodes.indexOf(node)
      const dir = await sortJobDir(scratch, { name: `partition-${serial++}-via-${index}` })
      const job = await node.submit(dir)
      submitted.push({ id: job.id, via: index, during })
    }

    const schedule: string[] = []
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const side = randomHalf(NODES)
      const other = nodes.map((_, i) => i).filter((i) => !side.includes(i))
      await lab.partition(side)
      schedule.push(`[${side.join(',')}]|[${other.join(',')}]`)
      // One job on each side of the cut, submitted while it holds.
      await Promise.all([submitOn(nodes[pick(side)]!, `cut ${cycle}`), submitOn(nodes[pick(other)]!, `cut ${cycle}`)])
      await delay(PARTITION_MS)
      await lab.heal()
      await submitOn(pick(nodes), `healed ${cycle}`)
      await delay(HEALED_MS)
    }
    console.log(`partition schedule: ${schedule.join(' ')}; ${submitted.length} jobs submitted`)

    const ids = submitted.map((s) => s.id)
    const verdicts = await waitForVerdicts(nodes, ids, { timeoutMs: 150_000 })
    expect(Object.keys(verdicts).sort()).toEqual([...ids].sort())
    for (const id of ids) expect(verdicts[id], `job ${id} (${JSON.stringify(submitted.find((s) => s.id === id))})`).toBe('verified')

    await waitForSameLog(nodes, { timeoutMs: 60_000 })
    const states = await collectState(nodes)
    const comparison = compareLogs(states)
    expect(comparison.identical, JSON.stringify(comparison)).toBe(true)
    // Nothing lost: every node knows every job, with the same verdict.
    for (const state of states) {
      const known = new Map(state.jobs.map((j) => [j.id, j.verdict]))
      for (const id of ids) expect(known.get(id), `job ${id} on ${state.peerId}`).toBe('verified')
    }
    expect(forkEvidence(states)).toEqual([])
  }, 300_000)
})
