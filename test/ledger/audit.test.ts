import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { auditExitCode, auditFile, auditLines, formatAuditReport, type AuditReport } from '../../src/ledger/audit.js'
import { readLines, writeExport } from '../../src/ledger/export.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { collect, makeChain, newSigner, openTestStore, testCodec } from './helpers.js'

async function auditBytes (bytes: Buffer): Promise<AuditReport> {
  return await auditLines(readLines([bytes]), testCodec)
}

/** 1-based line number holding byte `at` (a line's newline belongs to it). */
function lineOfByte (bytes: Buffer, at: number): number {
  let line = 1
  for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++
  return line
}

describe('export and audit', () => {
  const teardown = useTeardown()

  it('an export written by a store audits as valid, with counts per author and type, and calls onEntry in order', async () => {
    const store = await openTestStore(teardown)
    const first = await store.append('note', { text: 'hello' })
    await store.append('mark', { n: 1 })
    await store.append('note', { text: 'about the first', about: first.id })
    await store.ingest(makeChain(newSigner(), 4).map((e) => e.line))
    const file = join(await tempDir(teardown), 'log.ndjson')
    expect(await writeExport(store, file)).toMatchObject({ lines: 7 })
    const seen: Array<[number, number]> = []
    const report = await auditFile(file, testCodec, { onEntry: (entry, line) => { seen.push([line, entry.entry.seq]) } })
    expect(report).toMatchObject({ valid: true, lines: 7, entries: 7, problemCount: 0, types: { note: 6, mark: 1 } })
    expect(report.authors[store.author!]).toMatchObject({ entries: 3, head: { seq: 2 }, types: { note: 2, mark: 1 }, forked: false })
    expect(seen.map(([line]) => line)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(auditExitCode(report)).toBe(0)
    expect(formatAuditReport(report)).toMatch(/^VALID: 7 lines, 7 valid entries by 2 authors/)
    expect((await readFile(file, 'utf8')).split('\n')).toEqual([...await collect(store.exportLines()), ''])
  })

  it('changing any byte of any line is reported on that line', async () => {
    const chains = [makeChain(newSigner(), 2, { text: 'Grüße ✓' }), makeChain(newSigner(), 2)]
    const original = Buffer.from(chains.flat().map((e) => e.line + '\n').join(''))
    expect((await auditBytes(original)).valid).toBe(true)
    const failures: string[] = []
    for (let at = 0; at < original.length; at++) {
      const tampered = Buffer.from(original)
      tampered[at] = tampered[at]! ^ 0x01
      const report = await auditBytes(tampered)
      const line = lineOfByte(original, at)
      if (report.valid || !report.problems.some((p) => p.line === line)) failures.push(`byte ${at} (line ${line}): ${JSON.stringify(report.problems)}`)
    }
    expect(failures).toEqual([])
  })

  it('any other replacement value at any position is caught too', async () => {
    const original = Buffer.from(makeChain(newSigner(), 3).map((e) => e.line + '\n').join(''))
    await fc.assert(fc.asyncProperty(fc.nat({ max: original.length - 1 }), fc.integer({ min: 0, max: 255 }), async (at, value) => {
      fc.pre(original[at] !== value)
      const tampered = Buffer.from(original)
      tampered[at] = value
      const report = await auditBytes(tampered)
      expect(report.valid).toBe(false)
      expect(report.problems.map((p) => p.line)).toContain(lineOfByte(original, at))
    }), { numRuns: 300 })
  })

  it('reports chain problems: gaps, broken links, order, duplicates, forks, blank lines', async () => {
    const signer = newSigner()
    const chain = makeChain(signer, 5)
    const line = (e: DecodedEntry): string => e.line
    const fork = makeChain(signer, 1, { from: 2, prev: chain[1]!.id, text: 'fork' })[0]!
    const foreignPrev = makeChain(signer, 1, { from: 3, prev: 'e'.repeat(64), text: 'elsewhere' })[0]!

    const gap = await auditLines([chain[0], chain[1], chain[3], chain[4]].map((e) => line(e!)), testCodec)
    expect(gap.problems.map((p) => [p.line, p.kind])).toEqual([[3, 'gap']])
    expect(gap.gaps).toEqual([{ author: signer.publicHex, line: 3, missingFrom: 2, missingTo: 2 }])

    const broken = await auditLines([chain[0], chain[1], chain[2], foreignPrev].map((e) => line(e!)), testCodec)
    expect(broken.problems.map((p) => [p.line, p.kind])).toEqual([[4, 'prev-mismatch']])

    const order = await auditLines([chain[0], chain[2], chain[1]].map((e) => line(e!)), testCodec)
    expect(order.problems.map((p) => [p.line, p.kind])).toEqual([[2, 'gap'], [3, 'out-of-order']])

    const dup = await auditLines([chain[0], chain[1], chain[1]].map((e) => line(e!)), testCodec)
    expect(dup.problems.map((p) => [p.line, p.kind])).toEqual([[3, 'duplicate']])

    const forked = await auditLines([...chain.map(line), fork.line], testCodec)
    expect(forked.problems.map((p) => [p.line, p.kind])).toEqual([[6, 'fork']])
    expect(forked.forks).toEqual([{ author: signer.publicHex, seq: 2, ids: [chain[2]!.id, fork.id], lines: [3, 6] }])
    expect(forked.authors[signer.publicHex]?.forked).toBe(true)
    // The author's own misbehaviour, proven by its signatures: reported, but the export is intact.
    expect(forked).toMatchObject({ valid: true, invalidCount: 0, equivocating: [signer.publicHex] })
    expect(forked.problems[0]?.excused).toBe('equivocating')
    expect(formatAuditReport(forked)).toMatch(/^VALID[\s\S]*1 equivocating author excluded[\s\S]*fork: author/)

    const blank = await auditBytes(Buffer.from(`${chain[0]!.line}\n\n${chain[1]!.line}\r\n`))
    expect(blank.problems.map((p) => [p.line, p.kind])).toEqual([[2, 'blank-line'], [3, 'not-canonical']])
  })

  it('counts every problem but lists at most maxProblems', async () => {
    const lines = Array.from({ length: 50 }, () => 'not json')
    const report = await auditLines(lines, testCodec, { maxProblems: 10 })
    expect(report.problemCount).toBe(50)
    expect(report.problems).toHaveLength(10)
    expect(formatAuditReport(report)).toMatch(/and 40 more problems/)
  })

  it('reads lines of any size without holding them: an oversized line is reported too large', async () => {
    const huge = Buffer.alloc(1024 * 1024, 0x61)
    const chain = makeChain(newSigner(), 1)
    const report = await auditLines(readLines([Buffer.from(chain[0]!.line + '\n'), huge.subarray(0, 300_000), huge.subarray(300_000), Buffer.from('\n')]), testCodec)
    expect(report.problems.map((p) => [p.line, p.kind])).toEqual([[2, 'too-large']])
  })
})
