import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { TrustPolicy } from '../../src/jobs/index.js'
import { auditExport } from '../../src/node/cli/audit.js'
import { auditProgress } from '../../src/node/cli/commands/audit.js'
import { BIN } from '../helpers/cluster.js'

const fixture = (name: string): URL => new URL(`../fixtures/audit-golden/${name}`, import.meta.url)

interface PolicyFixture { quorum?: number, trusted?: string[], excluded?: string[] }
interface Expected { sha256: string, length: number, verdicts: Record<string, number> }

/**
 * The audit's whole report (verdicts, jobs, views, reputation, problems) of
 * a fixed export must stay byte-for-byte what main's build printed when the
 * fixture was made (test/fixtures/audit-golden: two platforms, a
 * cross-platform file, disagreements, failures, refusals, a cancel, a fork,
 * a revoke, two damaged signatures), under several policies. A change to
 * the fold or the report that moves one byte fails here.
 */
describe('the audit report of a fixed export', () => {
  const policies = JSON.parse(readFileSync(fixture('policies.json'), 'utf8')) as Record<string, PolicyFixture>
  const expected = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as Record<string, Expected>

  for (const [name, p] of Object.entries(policies)) {
    it(`is byte-for-byte main's under the policy "${name}"`, async () => {
      const policy: TrustPolicy = {
        ...(p.quorum !== undefined ? { quorum: p.quorum } : {}),
        ...(p.trusted !== undefined ? { trusted: new Set(p.trusted) } : {}),
        ...(p.excluded !== undefined ? { excluded: new Set(p.excluded) } : {})
      }
      const path = fileURLToPath(fixture('export.ndjson'))
      const { file: _file, ...report } = await auditExport(path, policy)
      const json = JSON.stringify(report)
      expect(report.verdicts).toEqual(expected[name]!.verdicts)
      expect(json.length).toBe(expected[name]!.length)
      expect(createHash('sha256').update(json).digest('hex')).toBe(expected[name]!.sha256)
    })
  }

  it('checking only the signatures the chains do not vouch for passes its two damaged signatures: later entries sign their ids', async () => {
    const path = fileURLToPath(fixture('export.ndjson'))
    const every = await auditExport(path, {})
    const chain = await auditExport(path, {}, { signatures: 'chain' })
    expect(every.log.problems.filter((p) => p.kind === 'bad-signature').map((p) => p.line)).toEqual([18, 91])
    expect(every.log.valid).toBe(false)
    expect(chain.log).toMatchObject({ valid: true, entries: 198, signatures: { mode: 'chain', failed: 0 } })
    expect(chain.log.signatures.checked).toBeLessThan(30)
    expect(chain.entriesUsed).toBe(every.entriesUsed + 2)
  })

  it('a long audit says how far it is on stderr, at most every 2 s, and why it starts again', () => {
    let clock = 0
    const written: string[] = []
    const progress = auditProgress(1_000_000, { write: (text: string) => written.push(text) }, {}, () => clock)
    clock = 1_000
    progress.lines(8192, 100_000)
    expect(written).toEqual([])
    clock = 2_000
    progress.lines(16_384, 250_000)
    clock = 3_000
    progress.lines(24_576, 300_000)
    clock = 4_100
    progress.lines(32_768, 400_000)
    expect(written).toEqual(['audit: 25 %, 16,384 lines read (8,192 a second)\n', 'audit: 40 %, 32,768 lines read (7,992 a second)\n'])
    progress.restart()
    expect(written[2]).toMatch(/^audit: a signature the chains did not vouch for failed; reading the log again/)
    // Checking every signature, a long audit says once that there is a faster mode.
    const told: string[] = []
    const every = auditProgress(0, { write: (text: string) => told.push(text) }, { suggestChain: true }, () => clock)
    clock += 2_500
    every.lines(8192, 1)
    clock += 2_500
    every.lines(16_384, 2)
    expect(told.filter((line) => line.includes('--signatures chain'))).toHaveLength(1)
    expect(told).toHaveLength(3)
  })

  it('the command says which signatures it checked, and refuses a mode it does not know', () => {
    const path = fileURLToPath(fixture('export.ndjson'))
    const audit = (...args: string[]): { status: number | null, stdout: string, stderr: string } =>
      spawnSync(process.execPath, [BIN, 'audit', '--trust', 'everyone', ...args, path], { encoding: 'utf8', timeout: 60_000 })
    const chain = audit('--signatures', 'chain')
    expect(chain.status).toBe(0)
    expect(chain.stdout).toMatch(/VALID — 198 lines, every id and chain checks out, proven by \d+ signatures/)
    const every = audit()
    expect(every.status).toBe(1)
    expect(every.stdout).toMatch(/line 18: bad-signature/)
    const unknown = audit('--signatures', 'some')
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/--signatures received "some"; give `every`/)
  })
})
