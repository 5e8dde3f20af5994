import type { JobView } from '../../../jobs/index.js'
import { connectFromOptions } from '../client.js'
import { defineCommand } from '../command.js'
import { cancelSpec } from '../specs.js'
import { resolveJobId } from '../job-id.js'

export const cancelCommand = defineCommand({
  ...cancelSpec,
  async run (options, positionals, io) {
    const client = await connectFromOptions(options, io.env)
    const id = await resolveJobId(client, positionals[0]!, io.signal)
    const job = await client.postJson<JobView>(`/api/jobs/${id}/cancel`, options.reason !== undefined ? { reason: options.reason } : {}, { signal: io.signal })
    io.stdout.write(options.json ? `${JSON.stringify(job)}\n` : `cancelled job ${job.id}\n`)
    return 0
  }
})
