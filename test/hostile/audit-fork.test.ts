import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess } from '../helpers/cluster.js'
import { sortJobDir } from '../helpers/job-dir.js'
import { hostilePeer, throwawayAuthor } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { jobBody } from '../jobs/helpers.js'

/**
 * Issue 12, attack 8: one throwaway key that forks made every honest export
 * fail `audit` (exit 1, INVALID). A fork is the author's own misbehaviour,
 * proven by its own signatures: audit reports it (author excluded, both
 * entries shown) and the intact export stays valid (exit 0). Tampering with
 * the export is still caught (exit 1).
 */
describe('attack 8: a throwaway key forks to make every honest export fail audit', { timeout: 180_000 }, () => {
  const teardown = useTeardown()

  it('the node keeps the fork as evidence; audit of its export exits 0, names the equivocator and shows both entries; a changed byte still exits 1', async () => {
    const node = await startNodeProcess(teardown, { args: ['--slots', '0'] })
    const scratch = await tempDir(teardown, 'buildhaus-audit-fork-')
    const honest = await node.submit(await sortJobDir(scratch, { name: 'honest work' }))

    const peer = await hostilePeer(teardown)
    await peer.connect(node.address)
    const liar = throwawayAuthor()
    const first = liar.next({ clock: Date.now(), time: Date.now(), type: 'job', body: jobBody({ name: 'one story' }) as unknown as Record<string, unknown> })
    const second = liar.next({ clock: Date.now() + 1, time: Date.now(), type: 'cancel', body: { job: first.id } })
    // The same seq as `second`, another entry: the fork.
    const other = throwawayAuthor(liar.key).next({ seq: 1, prev: first.id, clock: Date.now() + 2, time: Date.now(), type: 'cancel', body: { job: first.id, reason: 'another story' } })
    for (const entry of [first, second, other]) await peer.publishEntry(entry)
    await waitFor(async () => (await node.forks()).some((f) => f.author === liar.hex), { timeoutMs: 20_000, intervalMs: 250, what: 'the node to hold the fork as evidence' })

    const file = join(scratch, 'export.ndjson')
    const lines = await node.logLines()
    await writeFile(file, `${lines.join('\n')}\n`)
    const audit = await runCli(['audit', file])
    expect(audit.code, audit.stdout + audit.stderr).toBe(0)
    expect(audit.stdout).toMatch(/: VALID/)
    expect(audit.stdout).toContain(`equivocated: two entries at seq 1`)
    // Both entries, in full.
    expect(audit.stdout).toContain(second.line)
    expect(audit.stdout).toContain(other.line)
    const json = JSON.parse((await runCli(['audit', file, '--json'])).stdout) as {
      log: { valid: boolean, equivocating: string[], invalidCount: number }
      forks: Array<{ author: string, seq: number, entries: Array<{ id: string }> }>
      policy: { excluded: string[] }
      jobs: Array<{ id: string }>
    }
    expect(json.log).toMatchObject({ valid: true, invalidCount: 0, equivocating: [liar.hex] })
    expect(json.forks.map((f) => [f.author, f.seq, f.entries.map((e) => e.id).sort()])).toEqual([[liar.hex, 1, [second.id, other.id].sort()]])
    expect(json.policy.excluded).toContain(liar.hex)
    expect(json.jobs.map((j) => j.id)).toContain(honest.id)

    // Tampering is another matter: one changed byte of the honest job's line, and the export is invalid.
    const honestLine = lines.findIndex((line) => line.includes(honest.id) || line.includes('honest work'))
    const tampered = [...lines]
    tampered[honestLine] = tampered[honestLine]!.replace('honest work', 'honest wore')
    const tamperedFile = join(scratch, 'tampered.ndjson')
    await writeFile(tamperedFile, `${tampered.join('\n')}\n`)
    const bad = await runCli(['audit', tamperedFile])
    expect(bad.code).toBe(1)
    expect(bad.stdout).toMatch(/INVALID — 1 problem/)
  })
})
