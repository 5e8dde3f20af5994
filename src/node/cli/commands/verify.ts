import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
// The modules themselves, not the layers' index.ts: asking a node which builders built a file needs neither zod nor the job service.
import { findArtifact, type ArtifactMatch } from '../../../jobs/artifact-lookup.js'
import { UsageError } from '../../../util/errors.js'
import { connectFromOptions } from '../client.js'
import { defineCommand } from '../command.js'
import { verifySpec } from '../specs.js'
import { builderName, short, verdictText, when } from '../job-format.js'
import { membershipOption, readerPolicyFromOptions } from '../trust-options.js'

export interface VerifyAnswer {
  file: string
  sha256: string
  size: number
  verified: boolean
  /** Whose judgement: the node's (its own policy), or an export under the reader's policy. */
  judgedBy: { node: string, basis?: 'members' | 'list' | 'everyone' } | { export: string, valid: boolean, basis: 'members' | 'list' | 'everyone', mesh?: string, trusted: number | 'everyone', quorum: number | 'replicas' }
  matches: ArtifactMatch[]
}

export const verifyCommand = defineCommand({
  ...verifySpec,
  async run (options, positionals, io) {
    const file = positionals[0]!
    const info = await stat(file).catch(() => undefined)
    if (info === undefined || !info.isFile()) throw new UsageError(`${file} is not a file`)
    if (options.job !== undefined && !/^[0-9a-f]{64}$/.test(options.job)) throw new UsageError(`--job ${options.job} is not a job id (64 hex digits)`)
    if (options.log === undefined && (options.trust !== undefined || options.quorum !== undefined || options.mesh !== undefined || options.slice || options.signatures !== undefined)) {
      throw new UsageError('--mesh, --trust, --quorum, --slice and --signatures judge an exported log: add --log EXPORT (the node applies its own policy)')
    }
    if (options.log !== undefined && (options.api !== undefined || options.home !== undefined)) {
      throw new UsageError('--log judges offline: drop --api/--home, or drop --log to ask the node')
    }
    const hash = createHash('sha256')
    await pipeline(createReadStream(file), hash)
    const sha256 = hash.digest('hex')
    let matches: ArtifactMatch[]
    let judgedBy: VerifyAnswer['judgedBy']
    let names: ReadonlyMap<string, string> = new Map()
    if (options.log !== undefined) {
      const reader = await readerPolicyFromOptions(options, io.env)
      names = reader.names
      // The audit's code (the entry rules, the folds) only for a log judged offline.
      const [{ auditExport }, { signatureMode }] = await Promise.all([import('../audit.js'), import('./audit.js')])
      const report = await auditExport(options.log, reader.policy, { membership: membershipOption(reader), slice: options.slice, signatures: signatureMode(options.signatures) })
      matches = findArtifact(report.views, sha256, options.job)
      judgedBy = {
        export: options.log,
        valid: report.log.valid,
        basis: report.policy.basis,
        ...(report.membership !== undefined ? { mesh: report.membership.mesh } : {}),
        trusted: report.policy.trusted,
        quorum: report.policy.quorum
      }
    } else {
      const client = await connectFromOptions(options, io.env)
      const query = options.job !== undefined ? `?job=${options.job}` : ''
      matches = (await client.getJson<{ matches: ArtifactMatch[] }>(`/api/artifacts/${sha256}${query}`, { signal: io.signal })).matches
      // Whom the node counts, for the words beside a builder it does not count.
      const basis = await client.getJson<{ trust?: 'members' | 'list' | 'everyone' }>('/api/members', { signal: io.signal }).then((m) => m.trust, () => undefined)
      judgedBy = { node: client.url, ...(basis !== undefined ? { basis } : {}) }
    }
    const answer: VerifyAnswer = { file, sha256, size: info.size, verified: matches.some((m) => m.verified), judgedBy, matches }
    io.stdout.write(options.json ? `${JSON.stringify(answer)}\n` : formatVerify(answer, names, options.job))
    return answer.verified ? 0 : 1
  }
})

function judge (answer: VerifyAnswer): string {
  if ('node' in answer.judgedBy) return `the node's policy (${answer.judgedBy.node})`
  const { trusted, quorum, basis, mesh } = answer.judgedBy
  const whom = trusted === 'everyone'
    ? 'every builder'
    : basis === 'members'
      ? `the ${trusted} member${trusted === 1 ? '' : 's'} of mesh "${mesh ?? ''}"`
      : `${trusted} trusted builder${trusted === 1 ? '' : 's'}`
  return `your policy over ${answer.judgedBy.export} (believing ${whom}, quorum ${quorum === 'replicas' ? 'the replica count' : quorum})`
}

/** Why one place this hash appears does, or does not, vouch for the file. */
function explain (m: ArtifactMatch, names: ReadonlyMap<string, string>, basis: 'members' | 'list' | 'everyone' | undefined): string {
  const outsiders = basis === 'members' ? 'not members' : basis === 'list' ? 'not trusted' : 'not counted'
  const trusted = m.builders.filter((b) => !m.untrusted.includes(b))
  const who = [
    trusted.length > 0 ? `built by ${trusted.map((b) => builderName(b, names)).join(', ')}` : undefined,
    m.untrusted.length > 0 ? `claimed by ${m.untrusted.map((b) => builderName(b, names)).join(', ')} (${outsiders})` : undefined
  ].filter((part) => part !== undefined).join('; ')
  if (m.verified) return `${who}; ${m.agreeing} of ${m.quorum} needed agree${m.since !== undefined ? `, verified since ${when(m.since)}` : ''}`
  const verdict = verdictText(m.platformVerdict)
  if (m.platformVerdict === 'verified' || m.platformVerdict === 'failed') {
    const agreed = m.agreedSha256 !== undefined
      ? `the builders agreed on other bytes for ${m.path}: sha256 ${m.agreedSha256}`
      : `the agreed outcome has no ${m.path}`
    return `${who}; but the platform is ${verdict} and ${agreed}`
  }
  return `${who}; but the platform is ${verdict}${m.platformReason !== undefined ? `: ${m.platformReason}` : ''}`
}

export function formatVerify (answer: VerifyAnswer, names: ReadonlyMap<string, string>, job?: string): string {
  const lines = [`${answer.file}: sha256 ${answer.sha256}, ${answer.size} bytes`]
  if ('export' in answer.judgedBy && !answer.judgedBy.valid) {
    lines.push(`warning: ${answer.judgedBy.export} does not audit clean (run \`buildhaus-node audit\` on it); only its correctly signed entries were used`)
  }
  if (answer.matches.length === 0) {
    lines.push(`NOT VERIFIED: no builder in the log published a file with this hash${job !== undefined ? ` in job ${short(job)}` : ''}; it is not a build output the log vouches for (a different or altered file?)`)
  } else {
    lines.push(`${answer.verified ? 'VERIFIED' : 'NOT VERIFIED'} under ${judge(answer)}:`)
    for (const m of [...answer.matches].sort((a, b) => Number(b.verified) - Number(a.verified))) {
      lines.push(`  ${m.verified ? 'verified' : 'not verified'}: job ${short(m.job)} (${m.name}), platform ${m.platform}, as ${m.path}`)
      lines.push(`      ${explain(m, names, answer.judgedBy.basis)}`)
    }
  }
  return `${lines.join('\n')}\n`
}
