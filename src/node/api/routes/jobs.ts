import type { FastifyInstance } from 'fastify'
import { z } from 'zod'
import type { DecodedEntry } from '../../../ledger/entry.js'
import { attestations, JobNotFoundError, jobHeadline, platformHeadline, validateJobSpec, type JobSpec, type JobView, type PlatformHeadline, type SpecOverrides } from '../../../jobs/index.js'
import { sendError } from '../errors.js'

/** What the job routes need: the job service's queries and mutations. */
export interface JobsContext {
  jobs: {
    list (): JobView[]
    get (id: string): JobView | undefined
    entries (id: string): DecodedEntry[]
    /** A job not held in memory, read back from the log (the index is bounded). */
    load?: (id: string) => Promise<JobView | undefined>
    loadEntries?: (id: string) => Promise<DecodedEntry[]>
    submit (input: { spec: JobSpec, overrides?: SpecOverrides, source: { hash: string, size: number } }): Promise<JobView>
    cancel (id: string, reason?: string): Promise<JobView>
    rerun (id: string): Promise<JobView>
    /** A job's view changed (the job service's event): lets the routes cache what they serialise. */
    on?: (type: 'job', listener: (event: CustomEvent<{ id: string }>) => void) => () => void
  }
}

/** A job as the grid needs it: verdicts, counts and each result's outcome, without logs' and steps' detail. */
export interface JobSummary {
  id: string
  name: string
  submitter: string
  time: number
  verdict: JobView['verdict']
  reason?: string
  cancelled: boolean
  crossPlatform: JobView['crossPlatform']['verdict']
  diagnoses: number
  platforms: Array<PlatformHeadline & {
    claims: Array<{ builder: string, time: number }>
    results: Array<{ builder: string, status: string, log: string | null, artifacts: Array<{ path: string, sha256: string, size: number }>, start: number, end: number, agrees: boolean | null }>
  }>
}

export interface JobsResponse {
  jobs: JobSummary[]
  /** Jobs the node knows in all (the list may be limited). */
  total: number
}

/**
 * A job as the dashboard's grid needs it (GET /api/jobs?view=grid): each
 * platform's verdict and progress, without the results' detail, about a
 * tenth of a JobSummary's size.
 */
export interface GridJob extends Omit<JobSummary, 'platforms'> {
  platforms: Array<PlatformHeadline & {
    /** Builders that delivered a result (refusals aside). */
    done: number
    /** Builders that claimed the platform and have not delivered: building now. */
    running: Array<{ builder: string, time: number }>
  }>
}

export interface GridJobsResponse {
  jobs: GridJob[]
  total: number
}

const ID = /^[0-9a-f]{64}$/
const submitSchema = z.strictObject({
  spec: z.unknown(),
  overrides: z.strictObject({
    platforms: z.array(z.string()).optional(),
    replicas: z.number().int().optional(),
    timeout: z.number().int().optional()
  }).optional(),
  source: z.strictObject({ hash: z.string().regex(ID, 'source.hash must be 64 hex digits'), size: z.number().int().min(0) })
})

/** The job-level fields every list view shares. */
function jobFields (view: JobView): Omit<JobSummary, 'platforms'> {
  return {
    ...jobHeadline(view),
    cancelled: view.cancelled,
    crossPlatform: view.crossPlatform.verdict,
    diagnoses: view.diagnoses.length
  }
}

export function summarise (view: JobView): JobSummary {
  return {
    ...jobFields(view),
    platforms: view.platforms.map((p) => ({
      ...platformHeadline(p),
      claims: p.claims.map((c) => ({ builder: c.builder, time: c.time })),
      results: p.results.map((r) => ({ builder: r.builder, status: r.status, log: r.log, artifacts: r.artifacts, start: r.start, end: r.end, agrees: r.agrees }))
    }))
  }
}

export function gridSummary (view: JobView): GridJob {
  return {
    ...jobFields(view),
    platforms: view.platforms.map((p) => {
      const delivered = new Set<string>()
      const reported = new Set<string>()
      for (const r of p.results) {
        reported.add(r.builder)
        if (r.status !== 'refused') delivered.add(r.builder)
      }
      const running = new Map<string, number>()
      for (const c of p.claims) {
        if (!reported.has(c.builder)) running.set(c.builder, Math.min(running.get(c.builder) ?? c.time, c.time))
      }
      return {
        ...platformHeadline(p),
        done: delivered.size,
        running: [...running].map(([builder, time]) => ({ builder, time }))
      }
    })
  }
}

/** Decided views change only with new entries (a job event); open ones also with presence and time. */
function settled (view: JobView): boolean {
  return view.cancelled || view.platforms.every((p) => p.verdict === 'verified' || p.verdict === 'failed' || p.verdict === 'mismatch')
}

const LIST_VIEWS = { summary: summarise, grid: gridSummary } as const

/** Settled jobs' JSON kept per kind (the oldest forgotten first). */
const MAX_SERIALISED = 8192

export function registerJobRoutes (app: FastifyInstance, context: JobsContext): void {
  // The list is the dashboard's first request and the largest answer: keep each
  // settled job's JSON until its next job event, and build the list from the pieces.
  const serialised = { summary: new Map<string, string>(), grid: new Map<string, string>() }
  const off = context.jobs.on?.('job', (event) => {
    serialised.summary.delete(event.detail.id)
    serialised.grid.delete(event.detail.id)
  })
  if (off !== undefined) app.addHook('onClose', async () => { off() })
  const jsonOf = (view: JobView, kind: keyof typeof LIST_VIEWS): string => {
    if (off === undefined || !settled(view)) return JSON.stringify(LIST_VIEWS[kind](view))
    const cache = serialised[kind]
    let text = cache.get(view.id)
    if (text === undefined) {
      text = JSON.stringify(LIST_VIEWS[kind](view))
      cache.set(view.id, text)
      if (cache.size > MAX_SERIALISED) cache.delete(cache.keys().next().value!)
    }
    return text
  }

  app.get<{ Querystring: { limit?: string, verdict?: string, view?: string } }>('/api/jobs', async (request, reply) => {
    const kind = request.query.view ?? 'summary'
    if (kind !== 'summary' && kind !== 'grid') return sendError(reply, 400, 'BadRequest', `view=${kind} is not a view of the job list; use view=grid, or leave it out for full summaries`)
    const all = context.jobs.list()
    const verdict = request.query.verdict
    const filtered = verdict === undefined ? all : all.filter((j) => j.verdict === verdict)
    const limit = request.query.limit === undefined ? filtered.length : Math.max(0, Number.parseInt(request.query.limit, 10) || 0)
    const pieces = filtered.slice(0, limit).map((view) => jsonOf(view, kind))
    return await reply.type('application/json; charset=utf-8').send(`{"jobs":[${pieces.join(',')}],"total":${all.length}}`)
  })

  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (request) => {
    const id = request.params.id
    const view = ID.test(id) ? context.jobs.get(id) ?? await context.jobs.load?.(id) : undefined
    if (view === undefined) throw new JobNotFoundError(`this node knows no job ${request.params.id}; list jobs with GET /api/jobs`)
    return view
  })

  app.get<{ Params: { id: string } }>('/api/jobs/:id/provenance', async (request) => {
    const view = ID.test(request.params.id) ? context.jobs.get(request.params.id) : undefined
    if (view === undefined) throw new JobNotFoundError(`this node knows no job ${request.params.id}; list jobs with GET /api/jobs`)
    return { job: view.id, verdict: view.verdict, attestations: attestations(view) }
  })

  app.get<{ Params: { id: string } }>('/api/jobs/:id/entries', async (request) => {
    const id = request.params.id
    let entries = ID.test(id) ? context.jobs.entries(id) : []
    if (entries.length === 0 && ID.test(id) && context.jobs.loadEntries !== undefined) entries = await context.jobs.loadEntries(id)
    if (entries.length === 0) throw new JobNotFoundError(`this node knows no job ${request.params.id}`)
    return { entries: entries.map((e) => ({ id: e.id, ...e.entry })) }
  })

  app.post('/api/jobs', async (request, reply) => {
    const parsed = submitSchema.safeParse(request.body)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      return sendError(reply, 400, 'BadRequest', `the submission is malformed: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
    }
    const spec = validateJobSpec(parsed.data.spec)
    const overrides: SpecOverrides = {}
    if (parsed.data.overrides?.platforms !== undefined) overrides.platforms = parsed.data.overrides.platforms
    if (parsed.data.overrides?.replicas !== undefined) overrides.replicas = parsed.data.overrides.replicas
    if (parsed.data.overrides?.timeout !== undefined) overrides.timeout = parsed.data.overrides.timeout
    return await reply.status(201).send(await context.jobs.submit({ spec, overrides, source: parsed.data.source }))
  })

  app.post<{ Params: { id: string }, Body: { reason?: unknown } | undefined }>('/api/jobs/:id/cancel', async (request) => {
    if (!ID.test(request.params.id) || context.jobs.get(request.params.id) === undefined) {
      throw new JobNotFoundError(`this node knows no job ${request.params.id}`)
    }
    const reason = typeof request.body?.reason === 'string' && request.body.reason !== '' ? request.body.reason.slice(0, 1024) : undefined
    return await context.jobs.cancel(request.params.id, reason)
  })

  app.post<{ Params: { id: string } }>('/api/jobs/:id/rerun', async (request, reply) => {
    if (!ID.test(request.params.id) || context.jobs.get(request.params.id) === undefined) {
      throw new JobNotFoundError(`this node knows no job ${request.params.id}`)
    }
    return await reply.status(201).send(await context.jobs.rerun(request.params.id))
  })
}
