import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditExport } from '../../src/node/cli/audit.js'
import { logSlice } from '../../src/node/cli/release.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { World } from '../jobs/helpers.js'

/** A release's log slice skips the rest of each author's chain: `--slice` accepts gaps, and nothing else. */
describe('auditing a slice of a log', () => {
  const teardown = useTeardown()

  it('gaps are not problems in a slice, but they are in a whole export; a bad signature is one in both', async () => {
    const world = new World()
    const [submitter, builder] = [world.author(), world.author()]
    submitter.job({ name: 'unrelated' })
    builder.job({ name: 'unrelated too' })
    const job = submitter.job()
    const result = builder.result(job)
    const dir = await tempDir(teardown)
    const file = join(dir, 'log.ndjson')
    await writeFile(file, logSlice([job, result]).map((l) => `${l}\n`).join(''))
    expect((await auditExport(file, {})).log.valid).toBe(false)
    const sliced = await auditExport(file, {}, { slice: true })
    expect(sliced.log.valid).toBe(true)
    expect(sliced.jobs.map((j) => j.id)).toEqual([job.id])

    // By chain, each entry of a slice ends its own run (the gaps): every one of them is checked.
    const chained = await auditExport(file, {}, { slice: true, signatures: 'chain' })
    expect(chained.log).toMatchObject({ valid: true, signatures: { mode: 'chain', checked: 2, failed: 0 } })
    expect(chained.jobs.map((j) => j.id)).toEqual([job.id])

    const tampered = logSlice([job, result]).map((l, i) => (i === 1 ? l.replace('"status":"pass"', '"status":"fail"') : l))
    await writeFile(file, tampered.map((l) => `${l}\n`).join(''))
    expect((await auditExport(file, {}, { slice: true })).log.valid).toBe(false)
    const tamperedByChain = await auditExport(file, {}, { slice: true, signatures: 'chain' })
    expect(tamperedByChain.log).toMatchObject({ valid: false, signatures: { mode: 'every', fallback: true } })
    expect(tamperedByChain.log.problems.map((p) => p.kind)).toEqual(['bad-signature'])
  })
})
