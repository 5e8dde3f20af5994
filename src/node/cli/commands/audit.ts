import { stat } from 'node:fs/promises'
import { formatAuditReport } from '../../../ledger/index.js'
import { UsageError } from '../../../util/errors.js'
import { auditExport, type FullAuditReport } from '../../audit.js'
import { defineCommand, jsonOption } from '../command.js'
import { short, verdictText } from '../job-format.js'
import { trustOptions, trustPolicyFromOptions } from '../trust-options.js'

export const auditCommand = defineCommand({
  name: ['audit'],
  summary: 'verify an exported log offline (signatures, ids, chains, forks) and recompute every job\'s verdicts under your trust policy; exit 0 when the log is valid, 1 when anything is wrong',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: { ...trustOptions, ...jsonOption },
  async run (options, positionals, io) {
    const file = positionals[0]!
    const info = await stat(file).catch(() => undefined)
    if (info === undefined || !info.isFile()) throw new UsageError(`${file} is not a file; give an export made with \`buildhaus-node log export -o FILE\``)
    const policy = await trustPolicyFromOptions(options)
    const report = await auditExport(file, policy)
    if (options.json) {
      const { views: _views, ...printable } = report
      io.stdout.write(`${JSON.stringify(printable)}\n`)
    } else {
      io.stdout.write(formatFullReport(report))
    }
    return report.log.valid ? 0 : 1
  }
})

function formatFullReport (report: FullAuditReport): string {
  const lines = [formatAuditReport(report.log)]
  if (report.equivocating.length > 0) lines.push(`equivocating authors (not believed): ${report.equivocating.join(', ')}`)
  lines.push(`verdicts under: ${report.policy.trusted === 'everyone' ? 'every builder' : `${report.policy.trusted} trusted builders`}, quorum ${report.policy.quorum === 'replicas' ? 'the replica count' : report.policy.quorum}`)
  for (const job of report.jobs) {
    const platforms = job.platforms.map((p) => `${p.selector}:${verdictText(p.verdict)} ${p.agreeing}/${p.quorum}`).join('  ')
    lines.push(`${short(job.id)}  ${job.name}  ${verdictText(job.verdict)}  ${platforms}${job.reason !== undefined ? `  — ${job.reason}` : ''}`)
  }
  return `${lines.join('\n')}\n`
}
