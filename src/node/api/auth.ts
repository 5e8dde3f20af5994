import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sendError } from './errors.js'

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export interface MutationGuardContext {
  /** The bearer token from the home's api-token file. */
  token: string
  /**
   * Whether a request from loopback may change things without the token.
   * False on a node whose policy lets jobs use the network: a build sharing
   * the host's network could otherwise reach this API on 127.0.0.1.
   */
  trustLoopback?: boolean
}

/**
 * Reads are open to whoever can reach the API (loopback by default).
 * Mutations (any other method) come from this machine, or carry
 * `Authorization: Bearer <token>`; anything else gets 403.
 */
export function registerMutationGuard (app: FastifyInstance, context: MutationGuardContext): void {
  app.addHook('onRequest', async (request, reply) => {
    if (READ_METHODS.has(request.method)) return
    if (context.trustLoopback !== false && isLoopback(request.socket.remoteAddress)) return
    const presented = bearerToken(request)
    if (presented === undefined) {
      const who = isLoopback(request.socket.remoteAddress) ? 'this node lets jobs use the network, so changes' : 'changes from another machine'
      return sendError(reply, 403, 'Forbidden', `${who} need the node's API token: send "Authorization: Bearer <contents of api-token in the node's home>"`)
    }
    if (!sameSecret(presented, context.token)) {
      return sendError(reply, 403, 'Forbidden', 'the API token does not match this node\'s; copy it again from api-token in the node\'s home')
    }
  })
}

/** 127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6. The peer address of the socket, never a header. */
export function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4.startsWith('127.') || address === '::1'
}

function bearerToken (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
  return match?.[1]
}

function sameSecret (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
