import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import { describeIssues } from '../../../jobs/issues.js'
import { DEFAULT_WATCH_INTERVAL_S, templateFromSpec, validateJobSpec, watchBodySchema, type WatchBody, type WatchView } from '../../../jobs/index.js'
import { sendError } from '../errors.js'

/** A watch as GET /api/watches shows it: the log's view, and this node's own part in polling it. */
export interface WatchListing extends WatchView {
  /** Why this node never polls it (over its author's quota, not trusted…). */
  ignored?: string
  /** Live nodes designated to poll it now, first one first. */
  pollers: string[]
  /** When this node polls it next, if it is one of the pollers. */
  nextPoll?: number
  failures?: number
}

export interface WatchesContext {
  watches: {
    list (): WatchListing[]
    get (id: string): WatchListing | undefined
    add (body: WatchBody): Promise<WatchListing>
    remove (id: string): Promise<WatchListing>
  }
}

const addSchema = z.strictObject({
  kind: z.string(),
  source: z.string(),
  package: z.string().optional(),
  ref: z.string().optional(),
  suite: z.string().optional(),
  interval: z.number().int().optional(),
  /** A buildhaus.json-like template (`{version}` in its steps); absent: each release's own buildhaus.json. */
  job: z.unknown().optional(),
  /** As for submit: platforms, replicas, timeout overriding the template's. */
  overrides: z.strictObject({ platforms: z.array(z.string()).optional(), replicas: z.number().int().optional(), timeout: z.number().int().optional() }).optional()
})

const ID = /^[0-9a-f]{64}$/

/** GET /api/watches, GET /api/watches/:id, POST /api/watches, DELETE /api/watches/:id (docs/API.md, docs/WATCHES.md). */
export function registerWatchRoutes (app: FastifyInstance, context: WatchesContext): void {
  app.get('/api/watches', async () => ({ watches: context.watches.list() }))

  app.get<{ Params: { id: string } }>('/api/watches/:id', async (request, reply) => {
    const watch = ID.test(request.params.id) ? context.watches.get(request.params.id) : undefined
    if (watch === undefined) return sendError(reply, 404, 'WatchNotFound', `this node knows no watch ${request.params.id}; list them with GET /api/watches`)
    return watch
  })

  app.post('/api/watches', async (request, reply) => {
    const parsed = addSchema.safeParse(request.body)
    if (!parsed.success) return sendError(reply, 400, 'BadRequest', `the watch is malformed: ${describeIssues(parsed.error)}`)
    const { job, overrides, interval, ...rest } = parsed.data
    const body: Record<string, unknown> = { ...rest, interval: interval ?? DEFAULT_WATCH_INTERVAL_S }
    if (job !== undefined) {
      const template = templateFromSpec(validateJobSpec(job, 'the job template'), {
        ...(overrides?.platforms !== undefined ? { platforms: overrides.platforms } : {}),
        ...(overrides?.replicas !== undefined ? { replicas: overrides.replicas } : {}),
        ...(overrides?.timeout !== undefined ? { timeout: overrides.timeout } : {})
      })
      body.job = template
    }
    const checked = watchBodySchema.safeParse(body, { reportInput: true })
    if (!checked.success) return sendError(reply, 400, 'BadRequest', `the watch is invalid: ${describeIssues(checked.error)}`)
    return await reply.status(201).send(await context.watches.add(checked.data))
  })

  app.delete<{ Params: { id: string } }>('/api/watches/:id', async (request, reply) => {
    const watch = ID.test(request.params.id) ? context.watches.get(request.params.id) : undefined
    if (watch === undefined) return sendError(reply, 404, 'WatchNotFound', `this node knows no watch ${request.params.id}`)
    try {
      return await context.watches.remove(request.params.id)
    } catch (err) {
      return sendError(reply, 403, (err as Error).name, (err as Error).message)
    }
  })
}
