import type { FastifyInstance } from 'fastify'
import type { ArtifactMatch, BuilderReputation } from '../../../jobs/index.js'
import { sendError } from '../errors.js'

/** What the trust routes need: artifact lookups, reputation and forks, under the node's own policy. */
export interface TrustContext {
  findArtifact (sha256: string, job?: string): ArtifactMatch[]
  reputation (): BuilderReputation[]
  forks (): Promise<Array<{ author: string, seq: number, ids: string[] }>>
}

const HASH = /^[0-9a-f]{64}$/

export function registerTrustRoutes (app: FastifyInstance, context: TrustContext): void {
  app.get<{ Params: { sha256: string }, Querystring: { job?: string } }>('/api/artifacts/:sha256', async (request, reply) => {
    const { sha256 } = request.params
    if (!HASH.test(sha256)) return sendError(reply, 400, 'BadRequest', `"${sha256}" is not a sha256 (64 lower-case hex digits)`)
    const job = request.query.job
    if (job !== undefined && !HASH.test(job)) return sendError(reply, 400, 'BadRequest', `"${job}" is not a job id (64 lower-case hex digits)`)
    const matches = context.findArtifact(sha256, job)
    return { sha256, matches, verified: matches.some((m) => m.verified) }
  })

  app.get('/api/reputation', async () => ({ builders: context.reputation() }))

  app.get('/api/forks', async () => ({ forks: await context.forks() }))
}
