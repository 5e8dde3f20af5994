import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { foldAll, computeReputation, type TrustPolicy } from '../../src/jobs/index.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { auditExport } from '../../src/node/cli/audit.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { EVIL, GOOD, World, codec, type Author } from '../jobs/helpers.js'

/** One step of a generated log; indices pick among authors and earlier jobs (modulo their counts). */
type Step =
  | { kind: 'job', author: number, replicas: number }
  | { kind: 'claim', author: number, job: number }
  | { kind: 'result', author: number, job: number, outcome: 'good' | 'evil' | 'fail' | 'refused' }
  | { kind: 'cancel', author: number, job: number }
  | { kind: 'fork', author: number, job: number }
  | { kind: 'revoke', author: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('job' as const), author: fc.nat(4), replicas: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('claim' as const), author: fc.nat(4), job: fc.nat() }),
  fc.record({ kind: fc.constant('result' as const), author: fc.nat(4), job: fc.nat(), outcome: fc.constantFrom('good' as const, 'evil' as const, 'fail' as const, 'refused' as const) }),
  fc.record({ kind: fc.constant('result' as const), author: fc.nat(4), job: fc.nat(), outcome: fc.constant('good' as const) }),
  fc.record({ kind: fc.constant('cancel' as const), author: fc.nat(4), job: fc.nat() }),
  fc.record({ kind: fc.constant('fork' as const), author: fc.nat(4), job: fc.nat() }),
  fc.record({ kind: fc.constant('revoke' as const), author: fc.nat(4) })
)

/** Signed entries for the steps, and each author's chain (what an export lists, author by author). */
function makeLog (steps: readonly Step[]): { authors: Author[], entries: DecodedEntry[] } {
  const world = new World()
  const authors = Array.from({ length: 5 }, () => world.author())
  const jobs: DecodedEntry[] = []
  const entries: DecodedEntry[] = []
  const revoked = new Set<number>()
  for (const s of steps) {
    if (revoked.has(s.author)) continue
    const author = authors[s.author]!
    if (s.kind === 'job') {
      const job = author.job({ name: `job ${jobs.length}`, platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: s.replicas }] })
      jobs.push(job)
      entries.push(job)
      continue
    }
    if (s.kind === 'revoke') {
      entries.push(author.write('revoke', {}))
      revoked.add(s.author)
      continue
    }
    const job = jobs[s.job % Math.max(1, jobs.length)]
    if (job === undefined) continue
    if (s.kind === 'claim') entries.push(author.claim(job))
    if (s.kind === 'cancel') entries.push(author.cancel(job, 'changed my mind'))
    if (s.kind === 'result') {
      entries.push(s.outcome === 'fail' || s.outcome === 'refused'
        ? author.result(job, { status: s.outcome === 'fail' ? 'fail' : 'refused' })
        : author.result(job, { artifacts: s.outcome === 'good' ? GOOD : EVIL }))
    }
    if (s.kind === 'fork') {
      // A second entry at the author's previous seq, if it has one: proof that it equivocates.
      const mine = entries.filter((e) => e.entry.author === author.key)
      const last = mine.at(-1)
      if (last !== undefined) entries.push(author.fork('claim', { job: job.id, platform: 'linux-x64', lease: 1 }, last.entry.seq, last.entry.prev))
    }
  }
  return { authors, entries }
}

/** Export order: authors in ascending key order, each chain by seq (a fork's second entry right after the first). */
function exportOrder (entries: readonly DecodedEntry[]): DecodedEntry[] {
  return [...entries].sort((a, b) => (a.entry.author < b.entry.author ? -1 : a.entry.author > b.entry.author ? 1 : a.entry.seq - b.entry.seq))
}

/** The line with one hex digit of its signature's R changed: still well formed, no longer verifying. */
function withDamagedSignature (line: string): string {
  const at = line.lastIndexOf(',"sig":"') + ',"sig":"'.length
  return line.slice(0, at) + (line[at] === '0' ? '1' : '0') + line.slice(at + 1)
}

/**
 * The audit keeps each checked entry as a compact record (no signature,
 * prev link or line; one string per author) for its folds. Whatever the log
 * (forks, revokes, damaged signatures), its verdicts, views and reputation
 * must be exactly the fold's over the fully decoded entries that pass every
 * check, under the same policy.
 */
describe('the audit\'s compact entries', () => {
  const teardown = useTeardown()

  it('give exactly the verdicts, views and reputation of the fold over fully decoded entries', async () => {
    const dir = await tempDir(teardown)
    const file = join(dir, 'log.ndjson')
    const policy = fc.record({
      quorum: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      trusted: fc.option(fc.subarray([0, 1, 2, 3, 4]), { nil: undefined }),
      excluded: fc.subarray([0, 1, 2, 3, 4], { maxLength: 1 })
    })
    // Lines whose signature is damaged (by index, modulo the log's length): they count for nothing.
    const damage = fc.oneof(fc.constant([] as number[]), fc.uniqueArray(fc.nat(), { minLength: 1, maxLength: 3 }))
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), policy, damage, async (steps, picked, damaging) => {
      const { authors, entries } = makeLog(steps)
      const signed = exportOrder(entries).map((e) => e.line)
      const damaged = new Set(signed.length === 0 ? [] : damaging.map((i) => i % signed.length))
      const lines = signed.map((line, i) => damaged.has(i) ? withDamagedSignature(line) : line)
      await writeFile(file, lines.map((l) => `${l}\n`).join(''))
      const keys = (picks: readonly number[]): Set<string> => new Set(picks.map((i) => authors[i]!.key))
      const trust: TrustPolicy = {
        ...(picked.quorum !== undefined ? { quorum: picked.quorum } : {}),
        ...(picked.trusted !== undefined ? { trusted: keys(picked.trusted) } : {}),
        excluded: keys(picked.excluded)
      }
      const report = await auditExport(file, trust)
      // Every undamaged line is a correctly signed entry (forks and entries after a revoke are the authors' doing).
      expect(report.log.valid).toBe(damaged.size === 0)
      expect(report.log.problems.filter((p) => p.kind === 'bad-signature').map((p) => p.line - 1)).toEqual([...damaged].sort((a, b) => a - b))
      expect(report.entriesUsed).toBe(lines.length - damaged.size)
      const decoded = signed.filter((_, i) => !damaged.has(i)).map((line) => codec.decode(line))
      const views = foldAll(decoded, { ...trust, excluded: new Set([...trust.excluded!, ...report.equivocating]) })
      expect(JSON.stringify(report.views)).toBe(JSON.stringify(views))
      expect(JSON.stringify(report.reputation)).toBe(JSON.stringify(computeReputation(views)))
      const verdicts: Record<string, number> = {}
      for (const view of views) verdicts[view.verdict] = (verdicts[view.verdict] ?? 0) + 1
      expect(report.verdicts).toEqual(verdicts)
      // What an author signed after its revoke is counted from the full entries too.
      for (const r of report.revoked) {
        expect(r.ignored).toBe(decoded.filter((d) => d.entry.author === r.author && d.entry.seq > r.seq).length)
      }
      // Checking only the signatures the chains do not vouch for gives the same report, unless a
      // damaged signature was vouched for by the next entry of its chain: then its entry counts.
      const chained = await auditExport(file, trust, { signatures: 'chain' })
      const withoutCounts = (r: typeof report): string => JSON.stringify({ ...r, log: { ...r.log, signatures: undefined } })
      if (damaged.size === 0 || chained.log.signatures.fallback === true) {
        expect(withoutCounts(chained)).toBe(withoutCounts(report))
      } else {
        expect(chained.log.valid).toBe(true)
        const all = signed.map((line) => codec.decode(line))
        const allViews = foldAll(all, { ...trust, excluded: new Set([...trust.excluded!, ...chained.equivocating]) })
        expect(JSON.stringify(chained.views)).toBe(JSON.stringify(allViews))
      }
    }), { numRuns: 40 })
  }, 120_000)
})
