import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { extname, join } from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
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
 * The page shows what any mesh member wrote (job names, logs, reasons) and,
 * served on loopback, its own origin may change things. Scripts and styles
 * come only from this node, so text that slipped past escaping still cannot run.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

interface Asset {
  content: Buffer
  etag: string
}

/**
 * The web dashboard: static files from the package's dashboard/ folder,
 * plain HTML, CSS and JavaScript modules with no build step and no CDN.
 * Every page is the same single-page app; it routes on the URL's hash.
 * Files are read once and answered with an ETag, so a reload costs a 304 each.
 */
export function registerDashboardRoutes (app: FastifyInstance): void {
  const dir = join(packageRoot(), 'dashboard')
  const cache = new Map<string, Asset>()
  const load = async (name: string): Promise<Asset | undefined> => {
    const cached = cache.get(name)
    if (cached !== undefined) return cached
    try {
      const content = await readFile(join(dir, name))
      const asset = { content, etag: `"${createHash('sha256').update(content).digest('hex').slice(0, 32)}"` }
      cache.set(name, asset)
      return asset
    } catch {
      return undefined
    }
  }
  const send = async (request: FastifyRequest, reply: FastifyReply, asset: Asset, type: string): Promise<FastifyReply> => {
    reply
      .header('Cache-Control', 'no-cache')
      .header('ETag', asset.etag)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
    if (request.headers['if-none-match'] === asset.etag) return await reply.status(304).send()
    return await reply.type(type).send(asset.content)
  }
  app.get('/', async (request, reply) => {
    const page = await load('index.html')
    if (page === undefined) return sendError(reply, 404, 'NotFound', 'this installation has no dashboard (the dashboard/ folder is missing)')
    reply.header('Content-Security-Policy', CONTENT_SECURITY_POLICY).header('X-Frame-Options', 'DENY')
    return await send(request, reply, page, TYPES['.html']!)
  })
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const { name } = request.params
    const asset = ASSET.test(name) ? await load(name) : undefined
    if (asset === undefined) return sendError(reply, 404, 'NotFound', `the dashboard has no file ${name}`)
    return await send(request, reply, asset, TYPES[extname(name)] ?? 'application/octet-stream')
  })
}
