import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { InvalidInputError, UsageError, describeError } from '../../util/errors.js'
import { compareBytes, writeRegions, type ByteComparison } from './byte-diff.js'
import {
  DEFAULT_MAX_REPORT_BYTES, DEFAULT_TIMEOUT_MS, MAX_LINE_EDITS,
  MAX_MEMBERS_DETAILED, MAX_MEMBER_EXTRACT_BYTES, MAX_TEXT_DIFF_BYTES
} from './constants.js'
import { Deadline } from './deadline.js'
import { findOnPath, runDiffoscope, SANDBOX_INPUTS } from './diffoscope.js'
import {
  extractMembers, firstDecompressed, gunzipPair, gzipHeaderDifferences, listArchive, type HeaderDifference, type MemberInfo
} from './archive-members.js'
import { isGzip } from './gzip.js'
import { ReportWriter, hexOffset, truncateUtf8 } from './report.js'
import { isTarHeader } from './tar.js'
import { countChangeGroups, diffLines, writeUnifiedDiff } from './text-diff.js'

export interface ArtifactFile {
  /** The artifact's bytes, as a file on disk. */
  path: string
  /** Who built it (a builder's name or peer id), used to label its side of the report. */
  label: string
}

export interface CompareOptions {
  /** The whole comparison; past it, what was found so far is reported (default 120 s). */
  timeoutMs?: number
  /** Bound on `text` (default 256 KiB). */
  maxReportBytes?: number
  /** The diffoscope executable, or false for the built-in comparison only (default: diffoscope if on PATH). */
  diffoscope?: string | false
  /** bwrap to confine diffoscope with (default: found on the system PATH); without one, diffoscope is not run. */
  bwrapPath?: string
  /** Data (heap) each process in diffoscope's sandbox may take (default 2 GiB). */
  memoryBytes?: number
}

export interface DiffReport {
  tool: 'diffoscope' | 'builtin'
  /** The report, at most `maxReportBytes` of UTF-8. */
  text: string
  /** One line, e.g. "differ at 3 places; first at byte 0x1f4". */
  summary: string
  identical: boolean
  /** The report was cut at `maxReportBytes`. */
  truncated: boolean
}

/**
 * Compare two builders' copies of an artifact and explain how they differ,
 * down to the differing bytes (an embedded timestamp, a build path, member
 * order in a tarball…). Uses diffoscope when it is installed, always in a
 * bubblewrap sandbox of its own (never without one); otherwise a built-in
 * comparison that understands gzip, tar and text.
 */
export async function compareArtifacts (a: ArtifactFile, b: ArtifactFile, options: CompareOptions = {}): Promise<DiffReport> {
  const timeoutMs = positive(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs')
  const maxReportBytes = positive(options.maxReportBytes ?? DEFAULT_MAX_REPORT_BYTES, 'maxReportBytes')
  await assertFile(a)
  await assertFile(b)
  const deadline = new Deadline(timeoutMs)
  const raw = await compareBytes(a.path, b.path, deadline)
  const head = [
    `A: ${a.label} — ${basename(a.path)}, ${raw.sizeA} bytes, sha256 ${raw.sha256A}`,
    `B: ${b.label} — ${basename(b.path)}, ${raw.sizeB} bytes, sha256 ${raw.sha256B}`
  ]

  if (raw.complete && raw.sha256A === raw.sha256B) {
    const summary = `identical: ${raw.sizeA} bytes, sha256 ${raw.sha256A}`
    return finish({ tool: 'builtin', headLines: [...head, `Summary: ${summary}`], body: '', summary, identical: true, maxBytes: maxReportBytes })
  }

  const executable = options.diffoscope === false ? undefined : options.diffoscope ?? findOnPath('diffoscope')
  const toolRun = executable === undefined
    ? undefined
    : runDiffoscope(executable, resolve(a.path), resolve(b.path), {
      timeoutMs: deadline.remainingMs(),
      maxBytes: maxReportBytes,
      ...(options.bwrapPath === undefined ? {} : { bwrapPath: options.bwrapPath }),
      ...(options.memoryBytes === undefined ? {} : { memoryBytes: positive(options.memoryBytes, 'memoryBytes') })
    })
  // The built-in pass runs anyway: it gives the one-line summary, and the report if diffoscope fails.
  const builtin = await builtinComparison(a, b, raw, deadline, maxReportBytes)
  const outcome = await toolRun
  const partial = deadline.hit ? [`Note: the comparison reached its time limit of ${timeoutMs} ms; what follows is partial.`] : []

  if (outcome?.ok === true) {
    return finish({
      tool: 'diffoscope',
      headLines: [...head, `Summary: ${builtin.summary}`, ...partial, `Report by diffoscope (${executable ?? ''}, in a sandbox where A is ${join(SANDBOX_INPUTS.a, basename(a.path))} and B is ${join(SANDBOX_INPUTS.b, basename(b.path))}):`],
      body: outcome.text,
      summary: builtin.summary,
      identical: false,
      maxBytes: maxReportBytes,
      alreadyTruncated: outcome.truncated
    })
  }
  const note = outcome === undefined
    ? 'Built-in comparison (diffoscope is not installed; it would look deeper into more formats).'
    : `Built-in comparison (${outcome.reason}).`
  return finish({
    tool: 'builtin',
    headLines: [...head, `Summary: ${builtin.summary}`, ...partial, note],
    body: builtin.text,
    summary: builtin.summary,
    identical: false,
    maxBytes: maxReportBytes,
    alreadyTruncated: builtin.truncated
  })
}

interface FinishOptions {
  tool: DiffReport['tool']
  headLines: string[]
  body: string
  summary: string
  identical: boolean
  maxBytes: number
  /** The body was already cut (by diffoscope's or the built-in report's own bound). */
  alreadyTruncated?: boolean
}

function finish ({ tool, headLines, body, summary, identical, maxBytes, alreadyTruncated = false }: FinishOptions): DiffReport {
  const joined = `${headLines.join('\n')}\n${body === '' ? '' : `\n${body}`}`
  const note = '\n[report truncated]\n'
  const cut = truncateUtf8(joined, maxBytes)
  const text = cut.truncated ? `${truncateUtf8(joined, Math.max(0, maxBytes - note.length)).text}${note}` : cut.text
  return { tool, text, summary, identical, truncated: cut.truncated || alreadyTruncated }
}

function positive (value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new UsageError(`${name} must be a positive integer, not ${String(value)}`)
  return value
}

async function assertFile (side: ArtifactFile): Promise<void> {
  let info
  try {
    info = await stat(side.path)
  } catch (err) {
    throw new InvalidInputError(`cannot read the artifact of ${side.label} at ${side.path} (${describeError(err)}); fetch it again`)
  }
  if (!info.isFile()) throw new InvalidInputError(`the artifact of ${side.label} at ${side.path} is not a regular file`)
}

interface Context {
  report: ReportWriter
  deadline: Deadline
  workDir: string
  /** Nesting: 0 for the artifacts themselves, 1 inside an archive, … */
  depth: number
  labelA: string
  labelB: string
}

/** What a comparison of one pair found, for the summary. */
interface Finding {
  places: number
  /** Where the first difference is, e.g. "byte 0x1f4 (line 3)" or "pkg/version.py byte 0x10". */
  firstAt: string
}

async function builtinComparison (a: ArtifactFile, b: ArtifactFile, raw: ByteComparison, deadline: Deadline, maxReportBytes: number): Promise<{ summary: string, text: string, truncated: boolean }> {
  const report = new ReportWriter(maxReportBytes)
  const workDir = await mkdtemp(join(tmpdir(), 'buildhaus-diff-'))
  try {
    const context: Context = { report, deadline, workDir, depth: 0, labelA: `A (${a.label})`, labelB: `B (${b.label})` }
    const finding = await compareFiles(context, a.path, b.path, raw)
    let summary = finding.places === 0
      ? `undecided: no difference in the first ${raw.scanned} bytes before the time limit of ${deadline.ms} ms`
      : `differ at ${finding.places} place${finding.places === 1 ? '' : 's'}; first at ${finding.firstAt}`
    if (raw.sizeA !== raw.sizeB) summary += `; sizes ${raw.sizeA} vs ${raw.sizeB} bytes`
    return { summary, text: report.text(), truncated: report.truncated }
  } finally {
    await rm(workDir, { recursive: true, force: true })
  }
}

type Kind = 'tar' | 'tar.gz' | 'gz' | 'text' | 'binary'

const KIND_NAMES: Record<Kind, string> = {
  tar: 'a tar archive',
  'tar.gz': 'a gzip-compressed tar archive',
  gz: 'a gzip-compressed file',
  text: 'text',
  binary: 'binary data'
}

async function compareFiles (context: Context, pathA: string, pathB: string, raw: ByteComparison): Promise<Finding> {
  const [kindA, kindB] = await Promise.all([detectKind(pathA, context.depth), detectKind(pathB, context.depth)])
  if (kindA !== kindB) {
    context.report.line(`A is ${KIND_NAMES[kindA]}, B is ${KIND_NAMES[kindB]}: comparing their bytes.`)
    return await compareBinary(context, pathA, pathB, raw)
  }
  switch (kindA) {
    case 'tar':
    case 'tar.gz':
      return await compareArchives(context, pathA, pathB, raw, kindA === 'tar.gz')
    case 'gz':
      return await compareGzipped(context, pathA, pathB, raw)
    case 'text':
      return await compareText(context, pathA, pathB, raw)
    default:
      return await compareBinary(context, pathA, pathB, raw)
  }
}

async function detectKind (path: string, depth: number): Promise<Kind> {
  const handle = await open(path, 'r')
  let head: Buffer
  let size: number
  try {
    size = (await handle.stat()).size
    head = Buffer.alloc(Math.min(size, 64 * 1024))
    await handle.read(head, 0, head.byteLength, 0)
  } finally {
    await handle.close()
  }
  // Archives are opened two levels deep at most (e.g. a tarball inside a tarball), never further.
  const structured = depth < 2
  if (structured && isGzip(head)) {
    try {
      const first = await firstDecompressed(path, 512)
      return isTarHeader(first) ? 'tar.gz' : 'gz'
    } catch {
      return 'binary'
    }
  }
  if (structured && isTarHeader(head.subarray(0, 512))) return 'tar'
  if (size <= MAX_TEXT_DIFF_BYTES && looksLikeText(head)) return 'text'
  return 'binary'
}

function looksLikeText (head: Buffer): boolean {
  if (head.includes(0)) return false
  try {
    // stream: a multi-byte character cut at the end of the sample is not an error.
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true })
    return true
  } catch {
    return false
  }
}

async function compareBinary (context: Context, pathA: string, pathB: string, raw: ByteComparison): Promise<Finding> {
  const { report } = context
  report.line(`Bytes: ${raw.sizeA} in A, ${raw.sizeB} in B; ${raw.regionCount} differing region${raw.regionCount === 1 ? '' : 's'}${raw.complete ? '' : ' found before the time limit'}.`)
  report.line()
  await writeRegions(report, pathA, pathB, raw)
  return { places: raw.regionCount, firstAt: raw.firstOffset === undefined ? 'an unknown place' : `byte ${hexOffset(raw.firstOffset)}` }
}

async function compareText (context: Context, pathA: string, pathB: string, raw: ByteComparison): Promise<Finding> {
  const { report } = context
  const [textA, textB] = await Promise.all([readFile(pathA, 'utf8'), readFile(pathB, 'utf8')])
  const linesA = splitLines(textA)
  const linesB = splitLines(textB)
  const ops = diffLines(linesA, linesB, MAX_LINE_EDITS, context.deadline)
  if (ops === undefined) {
    report.line(`Text: too many changed lines for a line diff (more than ${MAX_LINE_EDITS}); showing bytes.`)
    return await compareBinary(context, pathA, pathB, raw)
  }
  const groups = countChangeGroups(ops)
  report.line(`Text: ${linesA.length} lines in A, ${linesB.length} in B; ${groups} changed place${groups === 1 ? '' : 's'}.`)
  if (groups > 0) writeUnifiedDiff(report, linesA, linesB, ops, { a: context.labelA, b: context.labelB })
  else report.line('The lines are the same: the files differ only in their final newline.')
  report.line()
  // The bytes too: a \r, a trailing space or a look-alike character hides in a line diff.
  report.line('First differing bytes:')
  await writeRegions(report, pathA, pathB, raw, 2)
  const lineNumber = raw.firstOffset === undefined ? undefined : lineAt(textA, raw.firstOffset)
  const where = raw.firstOffset === undefined ? 'an unknown place' : `byte ${hexOffset(raw.firstOffset)}${lineNumber === undefined ? '' : ` (line ${lineNumber})`}`
  return { places: Math.max(groups, raw.regionCount === 0 ? 0 : 1), firstAt: where }
}

/** Lines of a text; a final newline ends the last line rather than starting an empty one. */
function splitLines (text: string): string[] {
  const lines = text.split('\n')
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop()
  return lines
}

/** 1-based line holding the byte at `offset` of a UTF-8 text. */
function lineAt (text: string, offset: number): number {
  const bytes = Buffer.from(text, 'utf8').subarray(0, offset)
  let line = 1
  for (const byte of bytes) if (byte === 0x0a) line++
  return line
}

async function compareGzipped (context: Context, pathA: string, pathB: string, raw: ByteComparison): Promise<Finding> {
  const { report } = context
  const headerDiff = await gzipHeaderDifferences(pathA, pathB)
  report.line('gzip-compressed file.')
  writeGzipHeaderDiff(context, headerDiff)
  if (headerDiff.length > 0) await writeRegions(report, pathA, pathB, raw, 1)
  const inner = await decompressPair(context, pathA, pathB)
  if (inner === undefined) return { places: Math.max(1, headerDiff.length > 0 ? 1 : 0), firstAt: headerDiff.length > 0 ? `gzip header (${headerDiff.map((d) => d.field).join(', ')})` : 'the compressed bytes' }
  const innerRaw = await compareBytes(inner.a, inner.b, context.deadline)
  if (innerRaw.complete && innerRaw.sha256A === innerRaw.sha256B) {
    report.line(`Decompressed contents are identical (${innerRaw.sizeA} bytes, sha256 ${innerRaw.sha256A}).`)
    return { places: Math.max(1, headerDiff.length > 0 ? 1 : 0), firstAt: headerDiff.length > 0 ? `gzip header (${headerDiff.map((d) => d.field).join(', ')})` : 'the compressed bytes (same content, compressed differently)' }
  }
  report.line('Decompressed contents:')
  const finding = await compareFiles({ ...context, depth: context.depth + 1 }, inner.a, inner.b, innerRaw)
  const places = finding.places + (headerDiff.length > 0 ? 1 : 0)
  const firstAt = headerDiff.length > 0 ? `gzip header (${headerDiff.map((d) => d.field).join(', ')})` : `decompressed ${finding.firstAt}`
  return { places, firstAt }
}

async function decompressPair (context: Context, pathA: string, pathB: string): Promise<{ a: string, b: string } | undefined> {
  const dir = await mkdtemp(join(context.workDir, 'gz-'))
  try {
    return await gunzipPair(pathA, pathB, dir, context.deadline)
  } catch (err) {
    context.report.line(`Could not decompress both for comparison: ${describeError(err)}.`)
    return undefined
  }
}

function writeGzipHeaderDiff (context: Context, differences: HeaderDifference[]): void {
  if (differences.length === 0) return
  context.report.line('gzip header differs:')
  for (const d of differences) context.report.line(`  ${d.field.padEnd(8)} A ${d.a}    B ${d.b}`)
}

const MEMBER_FIELDS: Array<{ field: keyof MemberInfo, show: (m: MemberInfo) => string }> = [
  { field: 'type', show: (m) => m.type },
  { field: 'size', show: (m) => String(m.size) },
  { field: 'sha256', show: (m) => m.sha256 },
  { field: 'mode', show: (m) => `0${m.mode.toString(8)}` },
  { field: 'mtime', show: (m) => `${m.mtime} (${Number.isFinite(m.mtime) ? new Date(m.mtime * 1000).toISOString() : 'invalid'})` },
  { field: 'uid', show: (m) => String(m.uid) },
  { field: 'gid', show: (m) => String(m.gid) },
  { field: 'uname', show: (m) => JSON.stringify(m.uname) },
  { field: 'gname', show: (m) => JSON.stringify(m.gname) },
  { field: 'linkname', show: (m) => JSON.stringify(m.linkname) },
  { field: 'pax', show: (m) => JSON.stringify(m.pax) }
]

async function compareArchives (context: Context, pathA: string, pathB: string, raw: ByteComparison, gzipped: boolean): Promise<Finding> {
  const { report } = context
  const [listA, listB] = await Promise.all([listArchive(pathA, gzipped, context.deadline), listArchive(pathB, gzipped, context.deadline)])
  if (listA.error !== undefined || listB.error !== undefined) {
    report.line(`Cannot read the archives as tar (${listA.error ?? listB.error ?? ''}); comparing their bytes.`)
    return await compareBinary(context, pathA, pathB, raw)
  }
  const headerDiff = gzipped ? await gzipHeaderDifferences(pathA, pathB) : []
  report.line(`${gzipped ? 'gzip-compressed tar' : 'tar'} archive: ${listA.members.length} members in A, ${listB.members.length} in B${listA.complete && listB.complete ? '' : ' (listing stopped early: partial)'}.`)
  writeGzipHeaderDiff(context, headerDiff)
  if (headerDiff.length > 0) await writeRegions(report, pathA, pathB, raw, 1)

  const byKeyB = new Map(listB.members.map((m) => [m.key, m]))
  const keysA = new Set(listA.members.map((m) => m.key))
  const onlyA = listA.members.filter((m) => !byKeyB.has(m.key))
  const onlyB = listB.members.filter((m) => !keysA.has(m.key))
  const differing: Array<{ a: MemberInfo, b: MemberInfo, fields: string[] }> = []
  for (const memberA of listA.members) {
    const memberB = byKeyB.get(memberA.key)
    if (memberB === undefined) continue
    const fields = MEMBER_FIELDS.filter(({ show }) => show(memberA) !== show(memberB)).map(({ field }) => field)
    if (fields.length > 0) differing.push({ a: memberA, b: memberB, fields })
  }

  for (const m of onlyA) report.line(`only in A: ${m.key} (${m.type}, ${m.size} bytes)`)
  for (const m of onlyB) report.line(`only in B: ${m.key} (${m.type}, ${m.size} bytes)`)
  if (differing.length > 0) report.line(differing.length === 1 ? '1 member differs:' : `${differing.length} members differ:`)
  for (const { a, b, fields } of differing) {
    report.line(`  ${a.key}`)
    for (const field of fields) {
      const show = MEMBER_FIELDS.find((f) => f.field === field)!.show
      report.line(`    ${field.padEnd(8)} A ${show(a)}    B ${show(b)}`)
    }
  }
  const orderAt = firstOrderDifference(listA.members, listB.members)
  if (orderAt !== undefined) report.line(`member order differs from position ${orderAt + 1}: A has ${listA.members[orderAt]?.key ?? '(end)'}, B has ${listB.members[orderAt]?.key ?? '(end)'}`)

  // The contents of the first few members whose bytes differ, compared like files.
  const firstAtByMember = new Map<string, string>()
  const detailed = differing.filter((d) => d.fields.includes('sha256') && d.a.type === 'file' && d.b.type === 'file').slice(0, MAX_MEMBERS_DETAILED)
  if (detailed.length > 0 && context.depth < 2) {
    const extracted = await extractPair(context, pathA, pathB, gzipped, detailed.map((d) => d.a.key))
    for (const [index, d] of detailed.entries()) {
      if (context.deadline.expired) break
      const files = extracted.get(d.a.key)
      if (files === undefined) continue
      report.line()
      report.line(`=== member ${d.a.key} ===`)
      if (files.cut) report.line(`(only the first ${MAX_MEMBER_EXTRACT_BYTES} bytes of this member are compared)`)
      const memberRaw = await compareBytes(files.a, files.b, context.deadline)
      const finding = await compareFiles({ ...context, depth: context.depth + 1 }, files.a, files.b, memberRaw)
      firstAtByMember.set(d.a.key, finding.firstAt)
      if (index === detailed.length - 1 && differing.filter((x) => x.fields.includes('sha256')).length > detailed.length) {
        report.line(`(${differing.filter((x) => x.fields.includes('sha256')).length - detailed.length} more members with different contents not compared in detail)`)
      }
    }
  }

  let places = onlyA.length + onlyB.length + differing.length + (headerDiff.length > 0 ? 1 : 0) + (orderAt !== undefined ? 1 : 0)
  let firstAt: string
  const firstMember = differing[0]
  if (headerDiff.length > 0) {
    firstAt = `gzip header (${headerDiff.map((d) => d.field).join(', ')})`
  } else if (firstMember !== undefined) {
    const inner = firstAtByMember.get(firstMember.a.key)
    firstAt = inner !== undefined ? `${firstMember.a.key} ${inner}` : `${firstMember.a.key} (${firstMember.fields.join(', ')})`
  } else if (onlyA.length > 0 || onlyB.length > 0) {
    firstAt = `member ${(onlyA[0] ?? onlyB[0])!.key} (only in ${onlyA.length > 0 ? 'A' : 'B'})`
  } else if (orderAt !== undefined) {
    firstAt = `member order (position ${orderAt + 1})`
  } else {
    report.line('All members and their metadata are the same: the archives differ in their encoding (headers, padding).')
    const encoding = await compareEncoding(context, pathA, pathB, raw, gzipped)
    places = Math.max(1, encoding.places)
    firstAt = `archive encoding, ${encoding.firstAt}`
  }
  return { places, firstAt }
}

/** For archives whose members agree: where the tar streams themselves differ. */
async function compareEncoding (context: Context, pathA: string, pathB: string, raw: ByteComparison, gzipped: boolean): Promise<Finding> {
  if (!gzipped) return await compareBinary(context, pathA, pathB, raw)
  const inner = await decompressPair(context, pathA, pathB)
  if (inner === undefined) return await compareBinary(context, pathA, pathB, raw)
  const innerRaw = await compareBytes(inner.a, inner.b, context.deadline)
  if (innerRaw.complete && innerRaw.sha256A === innerRaw.sha256B) {
    context.report.line('The decompressed tar streams are identical: only the compression differs.')
    return { places: 1, firstAt: 'compressed bytes (same tar, compressed differently)' }
  }
  context.report.line('Decompressed tar streams:')
  const finding = await compareBinary(context, inner.a, inner.b, innerRaw)
  return { places: finding.places, firstAt: `decompressed ${finding.firstAt}` }
}

function firstOrderDifference (a: MemberInfo[], b: MemberInfo[]): number | undefined {
  const inBoth = new Set(a.map((m) => m.key).filter((key) => b.some((m) => m.key === key)))
  const orderA = a.filter((m) => inBoth.has(m.key)).map((m) => m.key)
  const orderB = b.filter((m) => inBoth.has(m.key)).map((m) => m.key)
  for (let i = 0; i < orderA.length; i++) {
    if (orderA[i] !== orderB[i]) return a.findIndex((m) => m.key === orderA[i])
  }
  return undefined
}

/** Extract the named members of both archives into the work directory (by index, never by their names). */
async function extractPair (context: Context, pathA: string, pathB: string, gzipped: boolean, keys: string[]): Promise<Map<string, { a: string, b: string, cut: boolean }>> {
  const dir = await mkdtemp(join(context.workDir, 'members-'))
  const wanted = new Map(keys.map((key, index) => [key, index]))
  const warn = (message: string): void => { context.report.line(message) }
  const [fromA, fromB] = await Promise.all([
    extractMembers(pathA, gzipped, wanted, join(dir, 'a-'), context.deadline, warn),
    extractMembers(pathB, gzipped, wanted, join(dir, 'b-'), context.deadline, warn)
  ])
  const pairs = new Map<string, { a: string, b: string, cut: boolean }>()
  for (const key of keys) {
    const a = fromA.get(key)
    const b = fromB.get(key)
    if (a !== undefined && b !== undefined) pairs.set(key, { a: a.path, b: b.path, cut: a.cut || b.cut })
  }
  return pairs
}

