import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { BuildhausError } from '../../util/errors.js'
import type { ApiErrorBody } from './types.js'

const STATUS_NAMES: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  408: 'RequestTimeout',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  503: 'Unavailable'
}

/**
 * The HTTP status of the node's errors that are not a plain 400, by their
 * stable `name`: one place for every route, and the layers below never learn
 * HTTP. A BuildhausError not listed here is a 400 (bad input).
 */
const ERROR_STATUS: Record<string, number> = {
  /** Only the submitter may cancel a job. */
  NotSubmitterError: 403,
  /** JobNotFoundError (src/jobs/errors.ts): no such job on this node. */
  JobNotFound: 404,
  /** A submission whose source is not in the node's blob store: upload it first. */
  SourceNotFoundError: 409
}

/** The status one of the node's errors answers with. */
export function statusOfError (err: BuildhausError): number {
  return ERROR_STATUS[err.name] ?? 400
}

export function sendError (reply: FastifyReply, status: number, name: string, message: string): FastifyReply {
  const body: ApiErrorBody = { error: { name, message } }
  return reply.status(status).type('application/json; charset=utf-8').send(body)
}

/** JSON errors everywhere, including fastify's own (bad JSON, body too large) and unknown routes. */
export function registerErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | BuildhausError | Error, _request, reply) => {
    const status = 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500
    if (err instanceof BuildhausError) return sendError(reply, status === 500 ? statusOfError(err) : status, err.name, err.message)
    if (status >= 500) return sendError(reply, status, 'InternalError', `the node failed to answer (${err.message}); see its log with DEBUG=buildhaus:*`)
    return sendError(reply, status, STATUS_NAMES[status] ?? 'BadRequest', err.message)
  })
  app.setNotFoundHandler((request, reply) => {
    return sendError(reply, 404, 'NotFound', `there is no ${request.method} ${request.url.split('?')[0] ?? ''} on this node; GET /api/health lists what it is`)
  })
}
