import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { auditExitCode, auditFile, auditLines, formatAuditReport, PROGRESS_LINES, type AuditReport } from '../../src/ledger/audit.js'
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

  describe('signatures bound by the chain (`signatures: chain`)', () => {
    /** Every byte of `original` flipped in turn, audited from a file both ways. */
    async function flipEveryByte (original: Buffer, check: (at: number, chain: AuditReport, every: AuditReport) => void): Promise<void> {
      const file = join(await tempDir(teardown), 'log.ndjson')
      for (let at = 0; at < original.length; at++) {
        const tampered = Buffer.from(original)
        tampered[at] = tampered[at]! ^ 0x01
        await writeFile(file, tampered)
        check(at, await auditFile(file, testCodec, { signatures: 'chain' }), await auditFile(file, testCodec))
      }
    }

    it('an honest export is valid with one signature checked per author: its last entry proves the rest through their ids', async () => {
      const store = await openTestStore(teardown)
      const first = await store.append('note', { text: 'hello' })
      await store.append('mark', { n: 1 })
      await store.append('note', { text: 'about the first', about: first.id })
      await store.ingest(makeChain(newSigner(), 40).map((e) => e.line))
      const file = join(await tempDir(teardown), 'log.ndjson')
      await writeExport(store, file)
      const seen: number[] = []
      const chain = await auditFile(file, testCodec, { signatures: 'chain', onEntry: (_entry, line) => { seen.push(line) } })
      const every = await auditFile(file, testCodec)
      expect(chain.signatures).toEqual({ mode: 'chain', checked: 2, failed: 0 })
      expect(every.signatures).toEqual({ mode: 'every', checked: 43, failed: 0 })
      const { signatures: _a, ...chainRest } = chain
      const { signatures: _b, ...everyRest } = every
      expect(chainRest).toEqual(everyRest)
      expect(seen).toEqual(Array.from({ length: 43 }, (_, i) => i + 1))
      expect(formatAuditReport(chain)).toMatch(/signatures: 2 checked, one per run of linked entries/)
    })

    it('a changed byte gives the report of every signature checked, except a changed signature that a later entry of the same chain vouches for', async () => {
      const chains = [makeChain(newSigner(), 3, { text: 'Grüße ✓' }), makeChain(newSigner(), 2)]
      const lines = chains.flat().map((e) => e.line + '\n')
      const original = Buffer.from(lines.join(''))
      // Byte ranges of the sig values of lines that are not their author's last (lines 1, 2 and 4).
      const vouched: Array<[number, number]> = []
      let offset = 0
      lines.forEach((line, i) => {
        const start = offset + Buffer.byteLength(line.slice(0, line.indexOf('"sig":"') + 7))
        if (i === 0 || i === 1 || i === 3) vouched.push([start, start + 128])
        offset += Buffer.byteLength(line)
      })
      const failures: string[] = []
      let vouchedFlips = 0
      await flipEveryByte(original, (at, chain, every) => {
        const { signatures: _a, ...chainRest } = chain
        const { signatures: _b, ...everyRest } = every
        const stillHex = /[0-9a-f]/.test(String.fromCharCode(original[at]! ^ 0x01))
        if (vouched.some(([from, to]) => at >= from && at < to) && stillHex) {
          // Only the signature's bytes changed, and the entry's id (which the next entry signs) did not.
          vouchedFlips++
          if (!chain.valid || chain.entries !== 5) failures.push(`byte ${at}: ${JSON.stringify(chain.problems)}`)
          return
        }
        if (JSON.stringify(chainRest) !== JSON.stringify(everyRest)) failures.push(`byte ${at}: chain ${JSON.stringify(chainRest.problems)} every ${JSON.stringify(everyRest.problems)}`)
      })
      expect(failures).toEqual([])
      expect(vouchedFlips).toBeGreaterThan(100)
    })

    it('a file whose checked signature fails is read again with every signature, and onEntry starts over after onRestart', async () => {
      const chain = makeChain(newSigner(), 4)
      const forged = chain[3]!.line.replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'a' ? 'b' : 'a'}`)
      const file = join(await tempDir(teardown), 'log.ndjson')
      await writeFile(file, [chain[0]!.line, chain[1]!.line, chain[2]!.line, forged, ''].join('\n'))
      let seen: number[] = []
      const report = await auditFile(file, testCodec, { signatures: 'chain', onEntry: (_entry, line) => { seen.push(line) }, onRestart: () => { seen = [] } })
      expect(report.signatures).toEqual({ mode: 'every', checked: 4, failed: 1, fallback: true })
      expect(report.problems.map((p) => [p.line, p.kind])).toEqual([[4, 'bad-signature']])
      expect(seen).toEqual([1, 2, 3])
    })

    it('a forged side of a fork, a duplicate, or the last entry before or after a gap is checked on its own', async () => {
      const signer = newSigner()
      const chain = makeChain(signer, 5)
      const fork = makeChain(signer, 1, { from: 2, prev: chain[1]!.id, text: 'fork' })[0]!
      const forged = (e: DecodedEntry): string => e.line.replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === 'a' ? 'b' : 'a'}`)
      const cases: Array<{ lines: string[], bad: number }> = [
        { lines: [...chain.map((e) => e.line), forged(fork)], bad: 6 },
        { lines: [chain[0]!.line, chain[1]!.line, forged(chain[1]!), chain[2]!.line], bad: 3 },
        { lines: [chain[0]!.line, chain[1]!.line, forged(chain[3]!)], bad: 3 },
        { lines: [chain[0]!.line, forged(chain[1]!), chain[3]!.line, chain[4]!.line], bad: 2 }
      ]
      for (const { lines, bad } of cases) {
        const report = await auditLines(lines, testCodec, { signatures: 'chain' })
        expect(report.valid).toBe(false)
        expect(report.signatures.failed).toBe(1)
        expect(report.problems.filter((p) => p.kind === 'bad-signature').map((p) => p.line)).toEqual([bad])
      }
    })
  })

  it('says how far it has read, every PROGRESS_LINES lines, in both modes', async () => {
    for (const signatures of ['every', 'chain'] as const) {
      const calls: Array<[number, number]> = []
      const report = await auditLines(Array.from({ length: 20_000 }, () => 'x'), testCodec, { signatures, maxProblems: 1, onProgress: (lines, bytes) => { calls.push([lines, bytes]) } })
      expect(report.lines).toBe(20_000)
      expect(calls).toEqual([[PROGRESS_LINES, PROGRESS_LINES * 2], [2 * PROGRESS_LINES, 4 * PROGRESS_LINES]])
    }
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
