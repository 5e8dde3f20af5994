import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { foldAll } from '../../src/jobs/index.js'
import { auditExport } from '../../src/node/cli/audit.js'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess } from '../helpers/cluster.js'
import { hostilePeer, throwawayAuthor, type ForgedEntry, type ThrowawayAuthor } from '../helpers/hostile-peer.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { codec, EVIL, GOOD, jobBody, resultBody } from '../jobs/helpers.js'
import { openTestStore } from '../ledger/helpers.js'

/**
 * Issue 12, attack 10: the docs said nothing after a `revoke` counts, but the
 * fold and audit still counted entries written after it: a post-revoke
 * result flipped a job from mismatch to verified. Now a revoke ends its
 * author's chain: nodes store nothing after it, and the fold and audit
 * ignore anything after it (audit reports it).
 */

const body = (value: unknown): Record<string, unknown> => value as Record<string, unknown>

/** A job, two builders that disagree (a mismatch), then B revokes its key and "agrees" afterwards. */
function flipAttempt (): { submitter: ThrowawayAuthor, a: ThrowawayAuthor, b: ThrowawayAuthor, entries: ForgedEntry[], job: ForgedEntry, afterRevoke: ForgedEntry } {
  const now = Date.now() - 60_000
  let clock = now
  const submitter = throwawayAuthor()
  const a = throwawayAuthor()
  const b = throwawayAuthor()
  const job = submitter.next({ clock: ++clock, time: now, type: 'job', body: body(jobBody({ name: 'flip me' })) })
  const aPass = a.next({ clock: ++clock, time: now, type: 'result', body: body(resultBody(job.id, { artifacts: GOOD })) })
  const bPass = b.next({ clock: ++clock, time: now, type: 'result', body: body(resultBody(job.id, { artifacts: EVIL })) })
  const revoke = b.next({ clock: ++clock, time: now, type: 'revoke', body: { reason: 'key retired' } })
  const afterRevoke = b.next({ clock: clock + 1, time: now, type: 'result', body: body(resultBody(job.id, { artifacts: GOOD })) })
  return { submitter, a, b, entries: [job, aPass, bPass, revoke, afterRevoke], job, afterRevoke }
}

describe('attack 10: entries after a revoke still counted', { timeout: 180_000 }, () => {
  const teardown = useTeardown()

  it('the fold and audit ignore what a key signs after its revoke (the job stays a mismatch); audit reports it and the export stays valid', async () => {
    const { entries, job, b } = flipAttempt()
    const decoded = entries.map((e) => codec.decode(e.line))
    const verdict = (views: JobView[]): string | undefined => views.find((v) => v.id === job.id)?.verdict
    expect(verdict(foldAll(decoded))).toBe('mismatch')
    // Without the revoke's effect the post-revoke result would verify it (what the attack did).
    expect(verdict(foldAll(decoded.filter((e) => e.entry.type !== 'revoke')))).toBe('verified')

    const dir = await tempDir(teardown, 'buildhaus-revoke-')
    const file = join(dir, 'export.ndjson')
    const byChain = [...entries].sort((x, y) => (x.entry.author as string).localeCompare(y.entry.author as string) || (x.entry.seq as number) - (y.entry.seq as number))
    await writeFile(file, `${byChain.map((e) => e.line).join('\n')}\n`)
    const report = await auditExport(file)
    expect(report.log.valid).toBe(true)
    expect(report.jobs.find((j) => j.id === job.id)?.verdict).toBe('mismatch')
    expect(report.revoked).toEqual([{ author: b.hex, seq: 1, line: expect.any(Number) as number, ignored: 1 }])
    expect(report.log.problems.map((p) => [p.kind, p.excused])).toEqual([['chain-ended', 'chain-ended']])
    const cli = await runCli(['audit', file])
    expect(cli.code).toBe(0)
    expect(cli.stdout).toContain('revoked its key at seq 1')
  })

  it('a store refuses entries after a revoke, and a node that revoked its own key cannot append', async () => {
    const store = await openTestStore(teardown, { codec })
    const { entries, afterRevoke } = flipAttempt()
    const report = await store.ingest(entries.map((e) => e.line))
    expect(report.accepted).toHaveLength(4)
    expect(report.rejected.map((r) => [r.id, r.reason])).toEqual([[afterRevoke.id, 'chain-ended']])
    await store.append('revoke', { reason: 'leaving' })
    await expect(store.append('revoke', {})).rejects.toMatchObject({ name: 'ChainEndedError' })
  })

  it('a live node stores the revoke, refuses the result after it, and its view of the job stays a mismatch', async () => {
    const { entries, job, afterRevoke, a, b } = flipAttempt()
    // The reader trusts both builders by its own list: what B wrote before its revoke counts, nothing after it
    // (under the default policy a revoked key is no member, and none of its results count: docs/FORMAT.md §8.6).
    const trust = await tempDir(teardown, 'buildhaus-revoke-trust-')
    await writeFile(join(trust, 'a.pub'), `${a.hex}\n`)
    await writeFile(join(trust, 'b.pub'), `${b.hex}\n`)
    const node = await startNodeProcess(teardown, { args: ['--slots', '0', '--trust', trust] })
    const peer = await hostilePeer(teardown)
    await peer.connect(node.address)
    const last = entries[entries.length - 2]!
    await waitFor(async () => {
      for (const entry of entries) await peer.publishEntry(entry)
      const view = await fetch(new URL(`/api/jobs/${job.id}`, node.apiUrl))
      if (!view.ok) return false
      return (await node.logLines()).some((line) => line === last.line)
    }, { timeoutMs: 20_000, intervalMs: 500, what: 'the node to store the job, both results and the revoke' })
    const view = await node.job(job.id)
    expect(view.verdict).toBe('mismatch')
    expect((await node.logLines()).includes(afterRevoke.line)).toBe(false)
  })
})
