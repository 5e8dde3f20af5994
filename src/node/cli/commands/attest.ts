import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { attestations, type PlatformAttestation } from '../../../jobs/provenance.js'
import { UsageError } from '../../../util/errors.js'
import { connectFromOptions } from '../client.js'
import { defineCommand } from '../command.js'
import { attestSpec } from '../specs.js'
import { resolveJobId } from '../job-id.js'
import { membershipOption, readerPolicyFromOptions } from '../trust-options.js'

export const attestCommand = defineCommand({
  ...attestSpec,
  async run (options, positionals, io) {
    let found: PlatformAttestation[]
    let id = positionals[0]!
    if (options.log !== undefined) {
      if (!/^[0-9a-f]{64}$/.test(id)) throw new UsageError(`with --log, give the whole job id (64 hex digits), not ${JSON.stringify(id)}`)
      const reader = await readerPolicyFromOptions(options, io.env)
      // The audit's code only for a log judged offline.
      const { auditExport } = await import('../audit.js')
      const report = await auditExport(options.log, reader.policy, { membership: membershipOption(reader) })
      const view = report.views.find((v) => v.id === id)
      if (view === undefined) throw new UsageError(`${options.log} holds no job ${id}`)
      found = attestations(view)
    } else {
      if (options.trust !== undefined || options.quorum !== undefined || options.mesh !== undefined) throw new UsageError('--mesh, --trust and --quorum judge an exported log: add --log EXPORT (the node applies its own policy)')
      const client = await connectFromOptions(options, io.env)
      id = await resolveJobId(client, id, io.signal)
      found = (await client.getJson<{ attestations: PlatformAttestation[] }>(`/api/jobs/${id}/provenance`, { signal: io.signal })).attestations
    }
    if (options.platform !== undefined) found = found.filter((a) => a.platform === options.platform)
    if (found.length === 0) {
      io.stderr.write(`job ${id.slice(0, 12)} has no verified platform with signed artifacts${options.platform !== undefined ? ` on ${options.platform}` : ''} (yet); see \`buildhaus-node status ${id.slice(0, 12)}\`\n`)
      return 1
    }
    const text = options.json ? `${JSON.stringify({ job: id, attestations: found })}\n` : found.map((a) => `${JSON.stringify(a.envelope)}\n`).join('')
    if (options.output === undefined) {
      io.stdout.write(text)
    } else {
      const out = createWriteStream(options.output, { flags: 'wx' })
      await Promise.race([once(out, 'open'), once(out, 'error').then(([err]) => { throw new UsageError(`cannot write ${options.output}: ${(err as Error).message} (the file must not exist yet)`) })])
      out.end(text)
      await once(out, 'finish')
      io.stderr.write(`wrote ${found.length} envelope${found.length === 1 ? '' : 's'} (${found.map((a) => `${a.platform}: ${a.signers.length} signature${a.signers.length === 1 ? '' : 's'}`).join(', ')}) to ${options.output}\n`)
    }
    return 0
  }
})
