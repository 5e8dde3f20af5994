import type { JobView } from '../../../jobs/index.js'
import { connectFromOptions } from '../client.js'
import { apiOption, defineCommand, homeOption, jsonOption } from '../command.js'
import { resolveJobId } from '../job-id.js'

export const cancelCommand = defineCommand({
  name: ['cancel'],
  summary: 'cancel a job you submitted (through the node that submitted it)',
  args: 'JOB',
  positionals: { min: 1, max: 1 },
  options: {
    ...apiOption,
    ...homeOption,
    reason: { type: 'string', placeholder: 'TEXT', description: 'why, for the log' },
    ...jsonOption
  },
  async run (options, positionals, io) {
    const client = await connectFromOptions(options, io.env)
    const id = await resolveJobId(client, positionals[0]!, io.signal)
    const job = await client.postJson<JobView>(`/api/jobs/${id}/cancel`, options.reason !== undefined ? { reason: options.reason } : {}, { signal: io.signal })
    io.stdout.write(options.json ? `${JSON.stringify(job)}\n` : `cancelled job ${job.id}\n`)
    return 0
  }
})
