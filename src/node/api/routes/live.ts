import type { FastifyInstance } from 'fastify'
import { JobNotFoundError, type JobView } from '../../../jobs/index.js'
import type { LiveSnapshot } from '../../../livelog/index.js'
import { parseLiveKey } from '../../../livelog/index.js'
import type { LiveEvent } from '../../services/live-logs.js'
import { sendError } from '../errors.js'

/** What GET /api/jobs/:id/live needs: the job, and the live logs of its builds. */
export interface LiveContext {
  jobs: { get (id: string): JobView | undefined }
  live: {
    snapshots (job: string): LiveSnapshot[]
    subscribe (job: string, listener: (event: LiveEvent) => void): () => void
  }
}

/** The data of a `log` event: a chunk of a build's output at its offset in the log. */
export interface LiveLogEvent { platform: string, builder: string, offset: number, text: string }
/** The data of an `end` event: a build's run ended (its result carries the whole log). */
export interface LiveEndEvent { platform: string, builder: string, note?: string }

/** Live log streams served at once; beyond it a client gets 503. */
export const MAX_LIVE_CLIENTS = 64
/** A client that does not read is cut off once this much is queued for it. */
const MAX_QUEUED_BYTES = 1024 * 1024
const KEEPALIVE_MS = 15_000
const ID = /^[0-9a-f]{64}$/

/** Every builder of the job has reported, or the job was cancelled: nothing more will run. */
function finished (view: JobView): boolean {
  if (view.cancelled) return true
  if (view.verdict === 'pending' || view.verdict === 'unmatched') return false
  return view.platforms.every((p) => p.claims.every((c) => p.results.some((r) => r.builder === c.builder)))
}

/**
 * GET /api/jobs/:id/live[?platform=SEL]: the job's running builds' output as
 * server-sent events. `log` {platform, builder, offset, text} — each builder's
 * backlog first, then chunks as they are printed; `end` {platform, builder,
 * note?} when a run ends (its result carries the whole log); `done` once the
 * job is decided and no build runs, after which the server closes the stream.
 */
export function registerLiveRoutes (app: FastifyInstance, context: LiveContext): void {
  let clients = 0
  app.get<{ Params: { id: string }, Querystring: { platform?: string } }>('/api/jobs/:id/live', async (request, reply) => {
    const id = request.params.id
    const view = ID.test(id) ? context.jobs.get(id) : undefined
    if (view === undefined) throw new JobNotFoundError(`this node knows no job ${id}; list jobs with GET /api/jobs`)
    const only = request.query.platform
    if (only !== undefined && !view.platforms.some((p) => p.selector === only)) {
      return sendError(reply, 400, 'BadRequest', `job ${id} has no platform ${only.slice(0, 200)} (it has ${view.platforms.map((p) => p.selector).join(', ')})`)
    }
    if (clients >= MAX_LIVE_CLIENTS) return sendError(reply, 503, 'Unavailable', `this node already serves ${MAX_LIVE_CLIENTS} live logs; try again later`)
    clients++
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' })
    res.write(': buildhaus live log\nretry: 2000\n\n')
    let closed = false
    const send = (event: string, data: unknown): void => {
      if (closed) return
      if (res.writableLength > MAX_QUEUED_BYTES) { close(); res.destroy(); return }
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
    }
    const wanted = (key: string): { platform: string, builder: string } | undefined => {
      const { platform, builder } = parseLiveKey(key)
      return only === undefined || platform === only ? { platform, builder } : undefined
    }
    const checkDone = (): void => {
      const current = context.jobs.get(id)
      if (current === undefined || !finished(current)) return
      if (context.live.snapshots(id).some((s) => !s.ended && wanted(s.key) !== undefined)) return
      send('done', { verdict: current.verdict })
      close()
      res.end()
    }
    const unsubscribe = context.live.subscribe(id, (event) => {
      if (event.type === 'chunk') {
        const who = wanted(event.chunk.key)
        if (who !== undefined) send('log', { ...who, offset: event.chunk.offset, text: event.chunk.text } satisfies LiveLogEvent)
      } else if (event.type === 'job') {
        setImmediate(checkDone)
      } else {
        const who = wanted(event.key)
        if (who !== undefined) send('end', { ...who, ...(event.note !== undefined ? { note: event.note } : {}) } satisfies LiveEndEvent)
        setImmediate(checkDone)
      }
    })
    for (const snapshot of context.live.snapshots(id)) {
      const who = wanted(snapshot.key)
      if (who === undefined) continue
      if (snapshot.text !== '') send('log', { ...who, offset: snapshot.offset, text: snapshot.text } satisfies LiveLogEvent)
      if (snapshot.ended) send('end', { ...who, ...(snapshot.note !== undefined ? { note: snapshot.note } : {}) } satisfies LiveEndEvent)
    }
    const keepalive = setInterval(() => { if (!closed) res.write(': keepalive\n\n'); checkDone() }, KEEPALIVE_MS)
    keepalive.unref()
    function close (): void {
      if (closed) return
      closed = true
      clearInterval(keepalive)
      unsubscribe()
      clients--
    }
    request.raw.once('close', close)
    checkDone()
  })
}
