import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sendError } from './errors.js'

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** What a refused change is told to send. */
const SEND_TOKEN = 'send "Authorization: Bearer <contents of api-token in the node\'s home>"'

export interface MutationGuardContext {
  /** The bearer token from the home's api-token file. */
  token: string
}

/**
 * Reads are open to whoever can reach the API (loopback by default).
 * Changes (any other method) need `Authorization: Bearer <token>` from
 * anywhere, this machine included: loopback proves nothing about who asks.
 * Other users of a shared machine reach 127.0.0.1, and so does whatever
 * shares this machine's network: git fetching a stranger's repository for a
 * watch, builds with network. The CLI reads the token from the node's home;
 * the dashboard takes it once per tab (`join` prints a link that carries it).
 *
 * Pages from another site get a 403 of their own whatever they send: no
 * other origin may post to the node.
 */
export function registerMutationGuard (app: FastifyInstance, context: MutationGuardContext): void {
  app.addHook('onRequest', async (request, reply) => {
    if (READ_METHODS.has(request.method)) return
    const origin = request.headers.origin
    if (origin !== undefined && !sameOrigin(origin, request.headers.host)) {
      return sendError(reply, 403, 'Forbidden', `a page from ${origin.slice(0, 200)} may not change this node; use the node's own dashboard at its API address`)
    }
    const presented = bearerToken(request)
    if (presented === undefined) {
      const where = isLoopback(request.socket.remoteAddress)
        ? `changes need the node's API token, from this machine too: ${SEND_TOKEN} (the CLI reads it from the node's home; the dashboard asks for it under "API token", or open the link \`join\` printed)`
        : `changes from another machine need the node's API token: ${SEND_TOKEN}`
      return sendError(reply, 403, 'Forbidden', where)
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

/** Whether a browser's Origin header names the host the request was sent to. */
function sameOrigin (origin: string, host: string | undefined): boolean {
  if (host === undefined) return false
  try {
    const url = new URL(origin)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === host.toLowerCase()
  } catch {
    return false // "null" and other opaque origins
  }
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
