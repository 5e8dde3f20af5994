import Fastify, { type FastifyInstance } from 'fastify'
import { PortInUseError } from '../../gossip/errors.js'
import { EnvironmentError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import type { ApiAddress } from '../config.js'
import { registerMutationGuard, type MutationGuardContext } from './auth.js'
import { registerErrorHandlers } from './errors.js'
import { registerHealthRoutes, type HealthContext } from './routes/health.js'
import { registerPeerRoutes, type PeersContext } from './routes/peers.js'
import { registerJobRoutes, type JobsContext } from './routes/jobs.js'
import { registerBlobRoutes, type BlobsContext } from './routes/blobs.js'
import { registerLogRoutes, type LogContext } from './routes/log.js'
import { registerEventRoutes, type EventsContext } from './routes/events.js'
import { registerMetricsRoutes, type MetricsContext } from './routes/metrics.js'
import { registerTrustRoutes, type TrustContext } from './routes/trust.js'
import { registerMemberRoutes, type MembersContext } from './routes/members.js'
import { registerDashboardRoutes } from './routes/dashboard.js'
import { registerLiveRoutes, type LiveContext } from './routes/live.js'
import { registerWatchRoutes, type WatchesContext } from './routes/watches.js'

const log = componentLogger('node:api')

/** Largest request body the API reads; submissions will raise this for their own route. */
export const API_BODY_LIMIT_BYTES = 1024 * 1024
/** A request must be complete within this long. */
export const API_REQUEST_TIMEOUT_MS = 30_000

/** Everything the routes read, each route group taking only its part. */
export type ApiContext = HealthContext & PeersContext & MutationGuardContext & Partial<NodeDataContext>

/** The parts backed by the ledger, blobs and jobs; a bare API (in tests) may leave them out. */
export type NodeDataContext = JobsContext & BlobsContext & LogContext & EventsContext & MetricsContext & TrustContext & MembersContext & Partial<Pick<LiveContext, 'live'>> & Partial<WatchesContext>

/** The fastify app with every route registered, not yet listening (tests use `inject`). */
export function buildApiApp (context: ApiContext): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: API_BODY_LIMIT_BYTES,
    requestTimeout: API_REQUEST_TIMEOUT_MS,
    // Stopping the node must not wait for idle keep-alive clients or open streams.
    forceCloseConnections: true,
    return503OnClosing: true
  })
  registerErrorHandlers(app)
  registerMutationGuard(app, context)
  registerHealthRoutes(app, context)
  registerPeerRoutes(app, context)
  if (hasNodeData(context)) {
    registerJobRoutes(app, context)
    registerBlobRoutes(app, context)
    registerLogRoutes(app, context)
    registerEventRoutes(app, context)
    registerMetricsRoutes(app, context)
    registerTrustRoutes(app, context)
    registerMemberRoutes(app, context)
    if (context.live !== undefined) registerLiveRoutes(app, { jobs: context.jobs, live: context.live })
    if (context.watches !== undefined) registerWatchRoutes(app, { watches: context.watches })
  }
  registerDashboardRoutes(app)
  return app
}

function hasNodeData (context: ApiContext): context is ApiContext & NodeDataContext {
  return context.jobs !== undefined && context.blobs !== undefined
}

/** The node's HTTP API as a service: start() listens, stop() closes every connection. */
export class ApiServer {
  private readonly app: FastifyInstance
  private readonly address: ApiAddress
  private boundUrl?: string

  constructor (app: FastifyInstance, address: ApiAddress) {
    this.app = app
    this.address = address
  }

  /** The URL a client on this machine uses (a wildcard host is reached through loopback). */
  get url (): string {
    if (this.boundUrl === undefined) throw new Error('the API server is not listening')
    return this.boundUrl
  }

  async start (): Promise<void> {
    try {
      await this.app.listen({ host: this.address.host, port: this.address.port })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      const where = `${formatHost(this.address.host)}:${this.address.port}`
      if (code === 'EADDRINUSE') {
        throw new PortInUseError(`the API address ${where} is already in use (is another buildhaus-node running?); stop that program or pass --api with another port, e.g. --api 127.0.0.1:4712`, { cause: err })
      }
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
        throw new EnvironmentError(`cannot serve the API on ${where} (${code}); pass --api with an address of this machine, e.g. --api 127.0.0.1:4711`, { cause: err })
      }
      throw err
    }
    const bound = this.app.server.address()
    const port = typeof bound === 'object' && bound !== null ? bound.port : this.address.port
    this.boundUrl = `http://${formatHost(clientHost(this.address.host))}:${port}`
    log('API listening on %s', this.boundUrl)
  }

  async stop (): Promise<void> {
    await this.app.close()
  }
}

/** Where a local client connects to reach a server bound to `host`. */
function clientHost (host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1'
  if (host === '::') return '::1'
  return host
}

function formatHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

export function createApiServer (context: ApiContext, address: ApiAddress): ApiServer {
  return new ApiServer(buildApiApp(context), address)
}
