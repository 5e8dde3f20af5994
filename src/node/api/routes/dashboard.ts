import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
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

/** lit-html's files the page imports: the library and its directives (ES modules, no build step). */
const LIT_ASSET = /^(?:directives\/)?[a-z-]+\.js$/

/** The page's import map, which a content policy must allow by its hash like any inline script. */
const IMPORT_MAP = /<script type="importmap">([\s\S]*?)<\/script>/

/**
 * The page shows what any mesh member wrote (job names, logs, reasons) and,
 * served on loopback, its own origin may change things. Scripts and styles
 * come only from this node — its files, and the import map by its hash — so
 * text that slipped past escaping still cannot run.
 */
function contentSecurityPolicy (page: Buffer): string {
  const importMap = IMPORT_MAP.exec(page.toString('utf8'))?.[1]
  const scripts = ["'self'", ...(importMap !== undefined ? [`'sha256-${createHash('sha256').update(importMap).digest('base64')}'`] : [])]
  return [
    "default-src 'none'",
    `script-src ${scripts.join(' ')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'"
  ].join('; ')
}

/** Where lit-html is installed (a dependency of this package, wherever npm put it), or undefined. */
function litHtmlDir (): string | undefined {
  try {
    // Its "node" entry is a file inside the package: walk up to the package.json that names it.
    let dir = dirname(fileURLToPath(import.meta.resolve('lit-html')))
    while (dir !== dirname(dir)) {
      const manifest = join(dir, 'package.json')
      if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'lit-html') return dir
      dir = dirname(dir)
    }
  } catch {
    // not installed: the page says it cannot load
  }
  return undefined
}

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
  const lit = litHtmlDir()
  const cache = new Map<string, Asset>()
  const load = async (path: string): Promise<Asset | undefined> => {
    const cached = cache.get(path)
    if (cached !== undefined) return cached
    try {
      const content = await readFile(path)
      const asset = { content, etag: `"${createHash('sha256').update(content).digest('hex').slice(0, 32)}"` }
      cache.set(path, asset)
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
    const page = await load(join(dir, 'index.html'))
    if (page === undefined) return sendError(reply, 404, 'NotFound', 'this installation has no dashboard (the dashboard/ folder is missing)')
    reply.header('Content-Security-Policy', contentSecurityPolicy(page.content)).header('X-Frame-Options', 'DENY')
    return await send(request, reply, page, TYPES['.html']!)
  })
  app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
    const { name } = request.params
    const asset = ASSET.test(name) ? await load(join(dir, name)) : undefined
    if (asset === undefined) return sendError(reply, 404, 'NotFound', `the dashboard has no file ${name}`)
    return await send(request, reply, asset, TYPES[extname(name)] ?? 'application/octet-stream')
  })
  // lit-html's production build, from the package's own dependencies: no copy in the repository, no CDN.
  app.get<{ Params: { '*': string } }>('/assets/lit-html/*', async (request, reply) => {
    const name = request.params['*']
    const asset = lit !== undefined && LIT_ASSET.test(name) ? await load(join(lit, name)) : undefined
    if (asset === undefined) return sendError(reply, 404, 'NotFound', `lit-html has no file ${name}${lit === undefined ? ' (lit-html is not installed: run npm ci)' : ''}`)
    return await send(request, reply, asset, TYPES['.js']!)
  })
}
