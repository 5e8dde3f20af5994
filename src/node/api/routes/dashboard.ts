import { readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { packageRoot } from '../../../util/package-root.js'
import { sendError } from '../errors.js'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon'
}

/** Files of the dashboard (a fixed set: no path from the request ever reaches the file system). */
const ASSET = /^[a-z0-9-]+\.(?:css|js|svg|png|ico)$/

/**
 * The web dashboard: static files from the package's dashboard/ folder,
 * plain HTML, CSS and JavaScript modules with no build step and no CDN.
 * Every page is the same single-page app; it routes on the URL's hash.
 */
export function registerDashboardRoutes (app: FastifyInstance): void {
  const dir = join(packageRoot(), 'dashboard')
  const cache = new Map<string, Buffer>()
  const serve = async (name: string): Promise<Buffer | undefined> => {
    const cached = cache.get(name)
    if (cached !== undefined) return cached
    try {
      const content = await readFile(join(dir, name))
      cache.set(name, content)
      return content
    } catch {
      return undefined
    }
  }
  app.get('/', async (_request, reply) => {
    const page = await serve('index.html')
    if (page === undefined) return sendError(reply, 404, 'NotFound', 'this installation has no dashboard (the dashboard/ folder is missing)')
    return await reply.type(TYPES['.html']!).header('Cache-Control', 'no-cache').send(page)
  })
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const { name } = request.params
    const content = ASSET.test(name) ? await serve(name) : undefined
    if (content === undefined) return sendError(reply, 404, 'NotFound', `the dashboard has no file ${name}`)
    return await reply.type(TYPES[extname(name)] ?? 'application/octet-stream').header('Cache-Control', 'no-cache').send(content)
  })
}
