import type { FastifyInstance } from 'fastify'
import type { HealthResponse, NetworkStatus } from '../types.js'

/** What GET /api/health reads. */
export interface HealthContext {
  peerId: string
  author: string
  version: string
  startedAt: number
  local (): { platforms: string[], environments?: string[], slots: number, free: number }
  memberCount (): number
  connectionCount (): number
  network? (): NetworkStatus
}

export function registerHealthRoutes (app: FastifyInstance, context: HealthContext): void {
  app.get('/api/health', async (): Promise<HealthResponse> => {
    const local = context.local()
    const now = Date.now()
    return {
      ok: true,
      peerId: context.peerId,
      author: context.author,
      platforms: local.platforms,
      environments: local.environments ?? [],
      slots: local.slots,
      free: local.free,
      version: context.version,
      peers: context.memberCount(),
      connections: context.connectionCount(),
      startedAt: context.startedAt,
      uptimeMs: now - context.startedAt,
      ...(context.network !== undefined ? { network: context.network() } : {})
    }
  })
}
