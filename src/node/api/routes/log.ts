import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'

/** What GET /api/log needs: the store's export, one canonical line per entry in a valid order. */
export interface LogContext {
  exportLines (): AsyncIterable<string>
}

export function registerLogRoutes (app: FastifyInstance, context: LogContext): void {
  app.get('/api/log', async (_request, reply) => {
    const lines = context.exportLines()
    const body = Readable.from((async function * () {
      for await (const line of lines) yield `${line}\n`
    })())
    return await reply.type('application/x-ndjson; charset=utf-8').header('Cache-Control', 'no-store').send(body)
  })
}
