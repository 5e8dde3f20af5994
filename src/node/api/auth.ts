import { timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sendError } from './errors.js'

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Routes that change who is a member: the token is needed for them from
 * loopback too, whatever `trustLoopback` says. Membership decides whose
 * results count; a process that merely shares this machine's network (git
 * fetching a stranger's repository in its sandbox does) must not be able to
 * make this node vouch. Rare, deliberate acts: `buildhaus-node vouch` reads
 * the token from the node's home.
 */
const TOKEN_ALWAYS = new Set(['/api/members/vouch', '/api/members/unvouch'])

export interface MutationGuardContext {
  /** The bearer token from the home's api-token file. */
  token: string
  /**
   * Whether a request from loopback may change things without the token.
   * False on a node whose builds share the host's network (its policy lets
   * jobs use the network, or it runs them with --sandbox none): such a build
   * could otherwise reach this API on 127.0.0.1.
   */
  trustLoopback?: boolean
}

/**
 * Reads are open to whoever can reach the API (loopback by default).
 * Mutations (any other method) come from this machine, or carry
 * `Authorization: Bearer <token>`; anything else gets 403.
 *
 * A browser on this machine is "this machine" for any web page it shows, so
 * requests a browser marks as coming from a page (`Origin`) must come from
 * the node's own origin (no other site may post to it), and are trusted as
 * local only when they name the node by a loopback host (a DNS-rebound
 * name is not: it needs the token like any other machine).
 */
export function registerMutationGuard (app: FastifyInstance, context: MutationGuardContext): void {
  app.addHook('onRequest', async (request, reply) => {
    if (READ_METHODS.has(request.method)) return
    const origin = request.headers.origin
    const host = request.headers.host
    if (origin !== undefined && !sameOrigin(origin, host)) {
      return sendError(reply, 403, 'Forbidden', `a page from ${origin.slice(0, 200)} may not change this node; use the node's own dashboard at its API address`)
    }
    const membership = TOKEN_ALWAYS.has(request.routeOptions.url ?? '')
    if (!membership && context.trustLoopback !== false && isLoopback(request.socket.remoteAddress) && (origin === undefined || isLoopbackHost(host))) return
    const presented = bearerToken(request)
    if (presented === undefined) {
      const send = 'send "Authorization: Bearer <contents of api-token in the node\'s home>"'
      if (membership) return sendError(reply, 403, 'Forbidden', `membership changes need the node's API token, from this machine too: ${send} (\`buildhaus-node vouch\` on the node's machine reads it from the node's home)`)
      const who = isLoopback(request.socket.remoteAddress) ? 'builds on this node can reach its API (they share this machine\'s network), so changes from this machine too' : 'changes from another machine'
      return sendError(reply, 403, 'Forbidden', `${who} need the node's API token: ${send}`)
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

/** A Host header naming this machine by a loopback address or `localhost`. */
function isLoopbackHost (host: string | undefined): boolean {
  if (host === undefined) return false
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '')
  // An IP literal only: a name such as 127.example.com can resolve anywhere.
  return name.toLowerCase() === 'localhost' || (isIP(name) !== 0 && isLoopback(name))
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
