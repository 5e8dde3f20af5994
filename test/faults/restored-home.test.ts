import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { collectState, forkEvidence, startCluster, waitForMesh, waitForSameLog, waitForVerdicts, type NodeProcess } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { sortJobDir } from '../helpers/job-dir.js'

interface ChainHead { seq: number, count: number }

/** The author's chain as the log shows it: highest seq and number of entries. */
function chainOf (log: string[], author: string): ChainHead {
  const seqs = log.map((line) => JSON.parse(line) as { author: string, seq: number }).filter((e) => e.author === author).map((e) => e.seq)
  return { seq: Math.max(-1, ...seqs), count: seqs.length }
}

async function runJobs (via: NodeProcess, nodes: NodeProcess[], scratch: string, names: string[]): Promise<string[]> {
  const ids: string[] = []
  for (const name of names) ids.push((await via.submit(await sortJobDir(scratch, { name }))).id)
  const verdicts = await waitForVerdicts(nodes, ids, { timeoutMs: 90_000 })
  for (const id of ids) expect(verdicts[id]).toBe('verified')
  return ids
}

describe('a node restarted from an older copy of its home', () => {
  const teardown = useTeardown()

  it('learns its newer entries from the mesh before writing, continues its chain, and forks nothing', async () => {
    const nodes = await startCluster(teardown, { size: 3, args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes)
    const restored = nodes[2]!
    const author = (await restored.health()).author
    const scratch = await tempDir(teardown, 'buildhaus-restore-')

    await runJobs(restored, nodes, scratch, ['restore-1'])
    await waitForSameLog(nodes)

    // The backup: a copy of the whole home taken while the node is stopped.
    await restored.stop()
    const backup = join(await tempDir(teardown, 'buildhaus-backup-'), 'home')
    await cp(restored.home, backup, { recursive: true, preserveTimestamps: true })
    await restored.restart()
    await waitForMesh(nodes)
    const old = chainOf(await restored.logLines(), author)

    // Life goes on: the node submits (and builds) more, so its chain grows past the backup.
    await runJobs(restored, nodes, scratch, ['restore-2', 'restore-3'])
    await waitForSameLog(nodes)
    const grown = chainOf(await restored.logLines(), author)
    expect(grown.seq).toBeGreaterThan(old.seq)

    // Disaster recovery from the old copy.
    await restored.stop()
    await rm(restored.home, { recursive: true, force: true })
    await cp(backup, restored.home, { recursive: true, preserveTimestamps: true })
    await restored.restart()
    // Before it wrote anything, it adopted the entries the backup lacked, and said so.
    expect(restored.stderr).toMatch(new RegExp(`chain was ${grown.seq - old.seq} entries behind the mesh`))
    expect(chainOf(await restored.logLines(), author)).toEqual(grown)
    await waitForMesh(nodes)

    // It writes on from where the mesh knows it, and nobody sees a fork.
    const ids = await runJobs(restored, nodes, scratch, ['restore-4'])
    const log = await waitForSameLog(nodes)
    const after = chainOf(log, author)
    expect(after.seq).toBeGreaterThan(grown.seq)
    expect(after.count).toBe(after.seq + 1)
    const states = await collectState(nodes)
    expect(forkEvidence(states)).toEqual([])
    for (const state of states) expect(state.jobs.find((j) => j.id === ids[0])?.verdict).toBe('verified')
  }, 240_000)
})
