import type { JobView } from '../../../jobs/index.js'
import { connectNode } from '../../client.js'
import { apiOption, defineCommand, homeOption, jsonOption } from '../command.js'
import { resolveJobId } from '../job-id.js'
import { jobReport } from '../job-format.js'
import { FINAL_VERDICTS } from '../watch.js'

export const statusCommand = defineCommand({
  name: ['status'],
  summary: 'show one job: verdict per platform, each builder\'s result and hashes, logs and diagnoses',
  args: 'JOB',
  positionals: { min: 1, max: 1 },
  options: { ...apiOption, ...homeOption, ...jsonOption },
  async run (options, positionals, io) {
    const client = await connectNode({
      ...(options.api !== undefined ? { api: options.api } : {}),
      ...(options.home !== undefined ? { home: options.home } : {}),
      env: io.env
    })
    const id = await resolveJobId(client, positionals[0]!, io.signal)
    const job = await client.getJson<JobView>(`/api/jobs/${id}`, { signal: io.signal })
    io.stdout.write(options.json ? `${JSON.stringify(job)}\n` : jobReport(job, client.url))
    // Scripts can tell the outcome from the exit code, as with `submit --wait`.
    if (!FINAL_VERDICTS.has(job.verdict)) return 3
    return job.verdict === 'verified' ? 0 : 1
  }
})
