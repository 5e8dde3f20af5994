import type { FastifyInstance } from 'fastify'
import type { ClockSkew } from '../../../gossip/presence/index.js'
import type { HealthResponse, LogUsage, NetworkStatus } from '../types.js'

/** What GET /api/health reads. */
export interface HealthContext {
  peerId: string
  author: string
  version: string
  startedAt: number
  local (): { platforms: string[], environments?: string[], slots: number, free: number }
  memberCount (): number
  connectionCount (): number
  /** The local log's size (absent where there is no log, e.g. some tests). */
  logUsage?: () => Promise<LogUsage>
  network? (): NetworkStatus
  /** This node's clock against its peers' (absent before enough peers were heard). */
  clockSkew? (): ClockSkew | undefined
}

export function registerHealthRoutes (app: FastifyInstance, context: HealthContext): void {
  app.get('/api/health', async (): Promise<HealthResponse> => {
    const local = context.local()
    const now = Date.now()
    const log = await context.logUsage?.()
    const clock = context.clockSkew?.()
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
      ...(log !== undefined ? { log } : {}),
      ...(context.network !== undefined ? { network: context.network() } : {}),
      ...(clock !== undefined ? { clock } : {})
    }
  })
}
