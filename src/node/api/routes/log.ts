import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'

/** What GET /api/log needs: the store's export, one canonical line per entry in a valid order. */
export interface LogContext {
  exportLines (): AsyncIterable<string>
  /** One stored entry by id (any type), if held. */
  entry?: (id: string) => Promise<{ id: string, entry: Record<string, unknown> } | undefined>
}

export function registerLogRoutes (app: FastifyInstance, context: LogContext): void {
  app.get('/api/log', async (_request, reply) => {
    const lines = context.exportLines()
    const body = Readable.from((async function * () {
      for await (const line of lines) yield `${line}\n`
    })())
    return await reply.type('application/x-ndjson; charset=utf-8').header('Cache-Control', 'no-store').send(body)
  })

  // One entry as signed, by id: what a release needs beside a job's own entries (the watch that triggered it).
  app.get<{ Params: { id: string } }>('/api/entries/:id', async (request, reply) => {
    const found = /^[0-9a-f]{64}$/.test(request.params.id) && context.entry !== undefined ? await context.entry(request.params.id) : undefined
    if (found === undefined) return await reply.status(404).send({ error: { name: 'EntryNotFound', message: `this node holds no entry ${request.params.id}` } })
    return { id: found.id, ...found.entry }
  })
}
