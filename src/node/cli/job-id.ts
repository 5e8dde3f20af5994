import { UsageError } from '../../util/errors.js'
import type { NodeClient } from './client.js'
import type { JobsResponse } from '../api/routes/jobs.js'

/**
 * A job named on the command line: the full id, or a unique prefix of at
 * least 6 hex digits (what tables print).
 */
export async function resolveJobId (client: NodeClient, text: string, signal: AbortSignal): Promise<string> {
  if (/^[0-9a-f]{64}$/.test(text)) return text
  if (!/^[0-9a-f]{6,63}$/.test(text)) {
    throw new UsageError(`"${text}" is not a job id; give the id (64 hex digits) or its first 6 or more digits, as \`buildhaus-node jobs\` prints them`)
  }
  const { jobs } = await client.getJson<JobsResponse>('/api/jobs', { signal })
  const matches = jobs.filter((j) => j.id.startsWith(text))
  if (matches.length === 1) return matches[0]!.id
  if (matches.length === 0) throw new UsageError(`no job on ${client.url} starts with ${text}; list them with \`buildhaus-node jobs\``)
  throw new UsageError(`${matches.length} jobs start with ${text}; give more digits`)
}
