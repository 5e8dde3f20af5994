import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { findArtifact, type ArtifactMatch } from '../../../jobs/index.js'
import { UsageError } from '../../../util/errors.js'
import { auditExport } from '../../audit.js'
import { connectNode } from '../../client.js'
import { apiOption, defineCommand, homeOption, jsonOption } from '../command.js'
import { short } from '../job-format.js'
import { trustOptions, trustPolicyFromOptions } from '../trust-options.js'

export interface VerifyAnswer {
  file: string
  sha256: string
  size: number
  verified: boolean
  matches: ArtifactMatch[]
}

export const verifyCommand = defineCommand({
  name: ['verify'],
  summary: 'which builders built exactly this file, for which job and platform, and is it verified under your policy? (exit 0 verified, 1 not)',
  args: 'FILE',
  positionals: { min: 1, max: 1 },
  options: {
    job: { type: 'string', placeholder: 'ID', description: 'only look in this job' },
    log: { type: 'string', placeholder: 'EXPORT', description: 'judge offline from an exported log (with --trust/--quorum) instead of asking the node' },
    ...trustOptions,
    ...apiOption,
    ...homeOption,
    ...jsonOption
  },
  async run (options, positionals, io) {
    const file = positionals[0]!
    const info = await stat(file).catch(() => undefined)
    if (info === undefined || !info.isFile()) throw new UsageError(`${file} is not a file`)
    if (options.job !== undefined && !/^[0-9a-f]{64}$/.test(options.job)) throw new UsageError(`--job ${options.job} is not a job id (64 hex digits)`)
    if (options.log === undefined && (options.trust !== undefined || options.quorum !== undefined)) {
      throw new UsageError('--trust and --quorum judge an exported log: add --log EXPORT (the node applies its own policy)')
    }
    const hash = createHash('sha256')
    await pipeline(createReadStream(file), hash)
    const sha256 = hash.digest('hex')
    let matches: ArtifactMatch[]
    if (options.log !== undefined) {
      const report = await auditExport(options.log, await trustPolicyFromOptions(options))
      matches = findArtifact(report.views, sha256, options.job)
    } else {
      const client = await connectNode({
        ...(options.api !== undefined ? { api: options.api } : {}),
        ...(options.home !== undefined ? { home: options.home } : {}),
        env: io.env
      })
      const query = options.job !== undefined ? `?job=${options.job}` : ''
      matches = (await client.getJson<{ matches: ArtifactMatch[] }>(`/api/artifacts/${sha256}${query}`, { signal: io.signal })).matches
    }
    const answer: VerifyAnswer = { file, sha256, size: info.size, verified: matches.some((m) => m.verified), matches }
    if (options.json) {
      io.stdout.write(`${JSON.stringify(answer)}\n`)
    } else {
      const lines = [`${file}: sha256 ${sha256}, ${info.size} bytes`]
      if (matches.length === 0) lines.push('no builder in the log published a file with this hash')
      for (const m of matches) {
        lines.push(`${m.verified ? 'VERIFIED' : 'not verified'}: job ${short(m.job)} (${m.name}) ${m.platform} ${m.path}, built by ${m.builders.map(short).join(', ')}; the platform is ${m.platformVerdict}`)
      }
      io.stdout.write(`${lines.join('\n')}\n`)
    }
    return answer.verified ? 0 : 1
  }
})
