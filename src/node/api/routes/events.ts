import type { FastifyInstance } from 'fastify'

/** One server-sent event: a name and a JSON payload. */
export interface NodeEvent {
  event: 'job' | 'peers' | 'log' | 'fork'
  data: unknown
}

export interface EventsContext {
  /** Subscribe to the node's events; returns the unsubscribe function. */
  subscribe (listener: (event: NodeEvent) => void): () => void
}

/** Clients beyond this many are refused (each holds a socket and a listener). */
export const MAX_EVENT_CLIENTS = 256
/** A comment line this often keeps proxies and browsers from closing an idle stream. */
const KEEPALIVE_MS = 15_000
/** A client that does not read is cut off once this much is queued for it. */
const MAX_QUEUED_BYTES = 1024 * 1024

export function registerEventRoutes (app: FastifyInstance, context: EventsContext): void {
  let clients = 0
  app.get('/api/events', async (request, reply) => {
    if (clients >= MAX_EVENT_CLIENTS) {
      return await reply.status(503).send({ error: { name: 'Unavailable', message: `this node already serves ${MAX_EVENT_CLIENTS} event streams; try again later` } })
    }
    clients++
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no'
    })
    res.write(': buildhaus events\nretry: 2000\n\n')
    const send = (event: NodeEvent): void => {
      if (res.writableLength > MAX_QUEUED_BYTES) { res.destroy(); return }
      res.write(`event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`)
    }
    const unsubscribe = context.subscribe(send)
    const keepalive = setInterval(() => { res.write(': keepalive\n\n') }, KEEPALIVE_MS)
    keepalive.unref()
    const close = (): void => {
      clearInterval(keepalive)
      unsubscribe()
      clients--
    }
    request.raw.once('close', close)
  })
}
