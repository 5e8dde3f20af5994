import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { collectState, forkEvidence, waitForMesh, waitForSameLog, waitForVerdicts } from '../helpers/cluster.js'
import { NetLab, probeNetem, probeNetns, startLabCluster } from '../helpers/netns.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { sortJobDir } from '../helpers/job-dir.js'

const run = promisify(execFile)
const netns = await probeNetns()
const netem = await probeNetem()
if (!netns.ok) console.warn(`skipping the slow-link tests: ${netns.reason}`)
else if (!netem.ok) console.warn(`skipping the latency and loss test: ${netem.reason}`)

/** Shape every node's egress on the lab switch with `tc qdisc … <qdisc>`. */
async function shapeAll (lab: NetLab, qdisc: string[]): Promise<void> {
  for (const node of lab.nodes) await run('tc', ['-n', node.ns, 'qdisc', 'add', 'dev', 'eth0', 'root', ...qdisc], { timeout: 10_000 })
}

describe.skipIf(!netns.ok)('slow links in network namespaces', () => {
  const teardown = useTeardown()

  it('at 2 Mbit/s per node, a job with a 1 MiB source is fetched, built twice and verified, and the logs agree', async () => {
    const lab = await NetLab.create(teardown, { size: 3 })
    // Token bucket: the rate every node may send at, whatever the link could do.
    await shapeAll(lab, ['tbf', 'rate', '2mbit', 'burst', '32kb', 'latency', '400ms'])
    const nodes = await startLabCluster(teardown, lab, { args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes, { timeoutMs: 60_000 })
    const dir = await sortJobDir(await tempDir(teardown, 'buildhaus-slow-'), { name: 'slow-link', build: 'mkdir -p dist && sha256sum payload.bin words.txt > dist/out.txt' })
    // Incompressible, so the shaped link carries every byte.
    await writeFile(join(dir, 'payload.bin'), randomBytes(1024 * 1024))
    const job = await nodes[0]!.submit(dir)
    const verdicts = await waitForVerdicts(nodes, [job.id], { timeoutMs: 120_000 })
    expect(verdicts[job.id]).toBe('verified')
    await waitForSameLog(nodes, { timeoutMs: 60_000 })
    expect(forkEvidence(await collectState(nodes))).toEqual([])
  }, 240_000)

  it.skipIf(!netem.ok)('with 100 ms latency and 2 % loss on every link, jobs verify and the logs agree', async () => {
    const lab = await NetLab.create(teardown, { size: 3 })
    await shapeAll(lab, ['netem', 'delay', '100ms', '20ms', 'loss', '2%'])
    const nodes = await startLabCluster(teardown, lab, { args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes, { timeoutMs: 60_000 })
    const scratch = await tempDir(teardown, 'buildhaus-latency-')
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await nodes[i]!.submit(await sortJobDir(scratch, { name: `latency-${i}` }))).id)
    const verdicts = await waitForVerdicts(nodes, ids, { timeoutMs: 120_000 })
    for (const id of ids) expect(verdicts[id]).toBe('verified')
    await waitForSameLog(nodes, { timeoutMs: 60_000 })
    expect(forkEvidence(await collectState(nodes))).toEqual([])
  }, 240_000)
})
