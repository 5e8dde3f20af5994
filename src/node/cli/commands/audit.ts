import { stat } from 'node:fs/promises'
import { UsageError } from '../../../util/errors.js'
import type { SignatureMode } from '../../../ledger/audit.js'
import { auditExport, type AuditedJob, type AuditedPlatform, type AuditExportOptions, type FullAuditReport } from '../audit.js'
import { defineCommand } from '../command.js'
import { auditSpec } from '../specs.js'
import { builderName, short, verdictText, when } from '../job-format.js'
import { formatTable } from '../table.js'
import { membershipOption, readerPolicyFromOptions } from '../trust-options.js'

export const auditCommand = defineCommand({
  ...auditSpec,
  async run (options, positionals, io) {
    const file = positionals[0]!
    const info = await stat(file).catch(() => undefined)
    if (info === undefined || !info.isFile()) throw new UsageError(`${file} is not a file; give an export made with \`buildhaus-node log export -o FILE\``)
    const reader = await readerPolicyFromOptions(options, io.env)
    const { policy, names } = reader
    const signatures = signatureMode(options.signatures)
    const report = await auditExport(file, policy, { membership: membershipOption(reader), slice: options.slice, signatures, progress: auditProgress(info.size, io.stderr, { suggestChain: signatures === 'every' }) })
    if (options.json) {
      const { views: _views, ...printable } = report
      io.stdout.write(`${JSON.stringify(printable)}\n`)
    } else {
      io.stdout.write(formatAudit(report, { names, verbose: options.verbose, basis: report.policy.basis }))
    }
    return report.log.valid ? 0 : 1
  }
})

/** Progress on stderr, for an audit that takes a while: the first line after PROGRESS_EVERY_MS, then one each PROGRESS_EVERY_MS. */
export function auditProgress (fileBytes: number, stderr: { write: (text: string) => unknown }, options: { suggestChain?: boolean } = {}, now = (): number => performance.now()): NonNullable<AuditExportOptions['progress']> {
  let began = now()
  let last = began
  // Said once, with the first line: only an audit long enough to show progress needs the faster mode.
  let suggest = options.suggestChain === true
  return {
    lines: (lines, bytes) => {
      const at = now()
      if (at - last < PROGRESS_EVERY_MS) return
      last = at
      const share = fileBytes > 0 ? `${Math.min(100, Math.floor((bytes / fileBytes) * 100))} %, ` : ''
      stderr.write(`audit: ${share}${lines.toLocaleString('en-US')} lines read (${Math.round(lines / ((at - began) / 1000)).toLocaleString('en-US')} a second)\n`)
      if (suggest) {
        suggest = false
        stderr.write('audit: every line\'s signature is being checked; `--signatures chain` checks one per run of linked entries and is more than twice as fast on a large log (docs/FORMAT.md §9 says what it leaves out)\n')
      }
    },
    restart: () => {
      suggest = false
      stderr.write('audit: a signature the chains did not vouch for failed; reading the log again with every signature checked, to name every bad line\n')
      began = now()
      last = began
    }
  }
}

/** How often an audit says how far it is. */
const PROGRESS_EVERY_MS = 2_000

/** `--signatures`: `every` unless told `chain`. */
export function signatureMode (value: string | undefined): SignatureMode {
  if (value === undefined || value === 'every' || value === 'chain') return value ?? 'every'
  throw new UsageError(`--signatures received ${JSON.stringify(value)}; give \`every\` (each line's own signature, the default) or \`chain\` (one per run of linked entries)`)
}

/** Jobs shown in detail without -v: the first that are not verified. */
const MAX_DETAILED_JOBS = 20

interface FormatOptions {
  names: ReadonlyMap<string, string>
  verbose: boolean
  /** Whom the verdicts count, for the words beside a result that does not count. */
  basis?: 'members' | 'list' | 'everyone'
}

/**
 * The audit for a human: is the log sound (and if not, what broke, on which
 * line, and how far each damaged chain can still be relied on), then every
 * job's verdict under the reader's policy, with detail where it is not
 * verified, then each builder's record.
 */
export function formatAudit (report: FullAuditReport, options: FormatOptions): string {
  const { log } = report
  const out: string[] = []
  const authorCount = Object.keys(log.authors).length
  const types = Object.entries(log.types).sort(([a], [b]) => (a < b ? -1 : 1)).map(([type, n]) => `${n} ${type}`).join(', ')
  const who = `${authorCount} author${authorCount === 1 ? '' : 's'}${types === '' ? '' : `; ${types}`}`
  if (log.valid) {
    const proof = log.signatures.mode === 'chain'
      ? `every id and chain checks out, proven by ${log.signatures.checked} signature${log.signatures.checked === 1 ? '' : 's'}: each chain's last entry signs the ids before it (--signatures every checks each line's own)`
      : 'every signature, id and chain checks out'
    out.push(`log ${report.file}: VALID — ${log.lines} lines, ${proof} (${who})`)
  } else {
    out.push(`log ${report.file}: INVALID — ${log.invalidCount} problem${log.invalidCount === 1 ? '' : 's'} in ${log.lines} lines; ${log.entries} entries are correctly signed (${who})`)
    const context = new Map(report.problemContext.map((c) => [c.line, c]))
    for (const problem of log.problems) {
      if (problem.excused !== undefined) continue
      const claim = context.get(problem.line)
      const author = problem.author ?? claim?.author
      const seq = problem.seq ?? claim?.seq
      const said = [
        claim?.type !== undefined ? `a ${claim.type}` : 'an entry',
        author !== undefined ? `by ${builderName(author, options.names)}` : undefined,
        seq !== undefined ? `seq ${seq}` : undefined,
        claim?.time !== undefined ? `dated ${when(claim.time)}` : undefined
      ].filter((part) => part !== undefined).join(' ')
      out.push(`  line ${problem.line}: ${problem.kind} — ${said}`)
      out.push(`      ${problem.message}`)
    }
    if (log.problemCount > log.problems.length) out.push(`  … and ${log.problemCount - log.problems.length} more problems (--json lists the first ${log.problems.length})`)
    for (const brk of report.breaks) {
      const upTo = brk.provenUpTo === null
        ? 'none of its entries before it links up'
        : `its chain is proven up to seq ${brk.provenUpTo.seq} (line ${brk.provenUpTo.line}, dated ${when(brk.provenUpTo.time)})`
      out.push(`  author ${builderName(brk.author, options.names)}: broken from line ${brk.line} (${brk.kind}); ${upTo}`)
    }
  }
  // An author's own misbehaviour, proven by its signatures: reported, never a reason to doubt the export.
  for (const fork of report.forks) {
    out.push(`  author ${builderName(fork.author, options.names)} equivocated: two entries at seq ${fork.seq}; nothing it wrote is believed`)
    for (const side of fork.entries) out.push(`    line ${side.line}: ${side.type} ${side.id} (clock ${side.clock}, dated ${when(side.time)})`, `      ${side.entry}`)
  }
  if (log.forks.length > report.forks.length) out.push(`  … and ${log.forks.length - report.forks.length} more forks (--json lists them)`)
  for (const ended of report.revoked) {
    out.push(`  author ${builderName(ended.author, options.names)} revoked its key at seq ${ended.seq} (line ${ended.line})${ended.ignored > 0 ? `; ${ended.ignored} entr${ended.ignored === 1 ? 'y' : 'ies'} it signed after that count for nothing` : ''}`)
  }

  if (report.membership !== undefined) out.push('', ...membershipLines(report.membership, options))
  out.push('')
  const trusted = report.policy.trusted === 'everyone'
    ? 'every builder (--trust everyone: unsafe, throwaway keys can forge verdicts)'
    : report.policy.basis === 'members'
      ? `the ${report.policy.trusted} member${report.policy.trusted === 1 ? '' : 's'} of mesh "${report.membership?.mesh ?? ''}"`
      : `${report.policy.trusted} trusted builder${report.policy.trusted === 1 ? '' : 's'}`
  const quorum = report.policy.quorum === 'replicas' ? 'each platform\'s replica count' : String(report.policy.quorum)
  const counts = Object.entries(report.verdicts).map(([verdict, n]) => `${n} ${verdict}`).join(', ')
  out.push(`verdicts under your policy — believing ${trusted}, quorum ${quorum}${report.equivocating.length > 0 ? `, not ${report.equivocating.length} equivocating author${report.equivocating.length === 1 ? '' : 's'}` : ''}:`)
  if (!log.valid) out.push(`  (computed from the ${report.entriesUsed} correctly signed entries only)`)
  if (report.jobs.length === 0) {
    out.push('  no jobs in this log')
  } else {
    out.push(`  ${report.jobs.length} job${report.jobs.length === 1 ? '' : 's'}: ${counts}`)
    const rows = report.jobs.map((job) => [
      short(job.id),
      job.name,
      verdictText(job.verdict),
      job.since !== undefined ? when(job.since) : '-',
      job.platforms.map((p) => `${p.selector} ${verdictText(p.verdict)} ${p.agreeing}/${p.quorum}`).join('  ')
    ])
    out.push(indent(formatTable(['JOB', 'NAME', 'VERDICT', 'SINCE', 'PLATFORMS (agreeing/quorum)'], rows)))
    const detailed = options.verbose ? report.jobs : report.jobs.filter((job) => job.verdict !== 'verified')
    for (const job of options.verbose ? detailed : detailed.slice(0, MAX_DETAILED_JOBS)) out.push(...jobDetail(job, options))
    if (!options.verbose && detailed.length > MAX_DETAILED_JOBS) {
      out.push('', `  … and ${detailed.length - MAX_DETAILED_JOBS} more jobs that are not verified (-v shows every job, --json everything)`)
    }
  }

  if (report.reputation.length > 0) {
    out.push('')
    out.push('builders (agreement with decided verdicts under this policy; score = (agreed+1)/(agreed+disagreed+2)):')
    const rows = report.reputation.map((r) => [
      builderName(r.builder, options.names),
      r.score.toFixed(2),
      String(r.agreed),
      String(r.disagreed),
      String(r.undecided),
      report.equivocating.includes(r.builder) ? 'equivocated' : report.policy.trustedKeys !== undefined && !report.policy.trustedKeys.includes(r.builder) ? (report.policy.basis === 'members' ? 'not a member' : 'not trusted') : ''
    ])
    out.push(indent(formatTable(['BUILDER', 'SCORE', 'AGREED', 'DISAGREED', 'UNDECIDED', 'NOTE'], rows)))
  }
  return `${out.join('\n').replace(/\n+$/, '')}\n`
}

/** The mesh's membership as the audit recomputed it from the log's vouches. */
function membershipLines (membership: NonNullable<FullAuditReport['membership']>, options: FormatOptions): string[] {
  const founders = membership.members.filter((m) => m.founder).length
  const lines = [`membership of mesh "${membership.mesh}" (${membership.file}), from the log's vouches: ${membership.members.length} member${membership.members.length === 1 ? '' : 's'} (${founders} founder${founders === 1 ? '' : 's'}, ${membership.admit} vouch${membership.admit === 1 ? '' : 'es'} admit)${membership.counts ? '' : ' — not counted: your --trust decides the verdicts'}`]
  if (membership.members.length === 0) lines.push('  no key is a member (a mesh file with no founders?): give --mesh FILE, the mesh this log comes from, or --trust DIR')
  for (const m of membership.members.filter((member) => !member.founder)) {
    lines.push(`  ${builderName(m.key, options.names)}: vouched for by ${m.vouchers.map((v) => builderName(v, options.names)).join(', ')}`)
  }
  for (const c of membership.candidates) lines.push(`  ${builderName(c.key, options.names)}: not admitted (${c.vouchers.length} of ${membership.admit} vouches)`)
  for (const b of membership.barred) lines.push(`  ${builderName(b.key, options.names)}: never a member (${b.reason})`)
  return lines
}

function indent (text: string): string {
  return text.replace(/\n$/, '').split('\n').map((line) => `  ${line}`).join('\n')
}

function jobDetail (job: AuditedJob, options: FormatOptions): string[] {
  // The platforms below carry the reasons; the job's own reason is the first of them, prefixed.
  const lines = ['', `  ${short(job.id)} ${job.name}: ${verdictText(job.verdict)}${job.verdict === 'cancelled' && job.reason !== undefined ? ` — ${job.reason}` : ''}`]
  if (job.crossPlatform === 'mismatch') lines.push(`    cross-platform: ${job.crossPlatformReason ?? 'mismatch'}`)
  for (const platform of job.platforms) lines.push(...platformDetail(platform, options))
  for (const d of job.diagnoses) {
    lines.push(`    diagnosis of ${d.platform} by ${builderName(d.author, options.names)} (${when(d.time)}): ${d.summary}`)
    lines.push(`      report: GET /api/blobs/${d.report} (from any node)`)
  }
  return lines
}

function platformDetail (p: AuditedPlatform, options: FormatOptions): string[] {
  const lines = [`    ${p.selector}: ${verdictText(p.verdict)} (${p.agreeing} of ${p.quorum} needed agree${p.since !== undefined ? `, since ${when(p.since)}` : ''})${p.reason !== undefined ? ` — ${p.reason}` : ''}`]
  // A mismatch's outcome groups get letters; a decided platform marks what differs from the agreed outcome.
  const groupOf = new Map<string, string>()
  p.mismatch?.groups.forEach((group, i) => { for (const builder of group.builders) groupOf.set(builder, String.fromCharCode(65 + (i % 26))) })
  const agreed = new Map((p.artifacts ?? []).map((a) => [a.path, a.sha256]))
  for (const r of p.results) {
    const notes = [
      groupOf.has(r.builder) ? `outcome ${groupOf.get(r.builder)!}` : undefined,
      !r.trusted ? (options.basis === 'members' ? 'not a member' : 'not trusted') : undefined,
      r.agrees === false ? 'disagrees' : undefined
    ].filter((n) => n !== undefined)
    lines.push(`      ${builderName(r.builder, options.names)}  ${r.status}  ${when(r.time)}${notes.length > 0 ? `  (${notes.join(', ')})` : ''}`)
    for (const a of r.artifacts) {
      const differs = agreed.has(a.path) && agreed.get(a.path) !== a.sha256
      lines.push(`        ${a.sha256}  ${a.path}${differs ? '  ← not the agreed file' : ''}`)
    }
  }
  return lines
}
