import type { JobsResponse } from '../../api/routes/jobs.js'
import { connectFromOptions } from '../client.js'
import { UsageError } from '../../../util/errors.js'
import { defineCommand } from '../command.js'
import { jobsSpec } from '../specs.js'
import { jobsTable } from '../job-format.js'

export const jobsCommand = defineCommand({
  ...jobsSpec,
  async run (options, _positionals, io) {
    const limit = options.limit === undefined ? 50 : Number(options.limit)
    if (!Number.isSafeInteger(limit) || limit < 0) throw new UsageError(`--limit ${JSON.stringify(options.limit)} is not a whole number`)
    const client = await connectFromOptions(options, io.env)
    const query = new URLSearchParams()
    if (limit > 0) query.set('limit', String(limit))
    if (options.verdict !== undefined) query.set('verdict', options.verdict)
    const answer = await client.getJson<JobsResponse>(`/api/jobs?${query.toString()}`, { signal: io.signal })
    if (options.json) {
      io.stdout.write(`${JSON.stringify(answer)}\n`)
      return 0
    }
    io.stdout.write(jobsTable(answer.jobs, Date.now()))
    if (answer.jobs.length < answer.total) io.stdout.write(`${answer.jobs.length} of ${answer.total} jobs shown (--limit 0 shows all)\n`)
    return 0
  }
})
