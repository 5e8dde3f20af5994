import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { TrustPolicy } from '../../src/jobs/index.js'
import { auditExport } from '../../src/node/cli/audit.js'

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
})
