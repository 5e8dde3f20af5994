import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { DeadlineError, describeError } from '../util/errors.js'
import { HTTP_TIMEOUT_MS, MAX_REDIRECTS } from './constants.js'
import { UpstreamError } from './errors.js'
import type { AddressPolicy } from './guard.js'

export interface GetOptions {
  policy: AddressPolicy
  maxBytes: number
  timeoutMs?: number
  headers?: Record<string, string>
  signal?: AbortSignal
}

/**
 * GET a URL into memory, bounded in bytes and time, over http(s) only,
 * connecting only to addresses the policy permits (checked again at each
 * redirect, with no second DNS lookup). Throws UpstreamError saying what
 * went wrong, with the URL.
 */
export async function boundedGet (url: string, options: GetOptions): Promise<Buffer> {
  const deadline = AbortSignal.timeout(options.timeoutMs ?? HTTP_TIMEOUT_MS)
  const signal = options.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline
  let current = url
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const target = new URL(current)
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new UpstreamError(`${current} is not an http(s) URL`)
    // Fail early on a literal or a name the policy refuses (the lookup function checks again when connecting).
    await options.policy.resolve(target.hostname)
    const response = await send(target, options, signal)
    const status = response.statusCode ?? 0
    if (status >= 300 && status < 400 && response.headers.location !== undefined) {
      response.resume()
      current = new URL(response.headers.location, target).toString()
      continue
    }
    if (status !== 200) {
      response.resume()
      throw new UpstreamError(`GET ${current} answered HTTP ${status}`)
    }
    const declared = Number(response.headers['content-length'] ?? NaN)
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      response.destroy()
      throw new UpstreamError(`GET ${current} would send ${declared} bytes, more than the ${options.maxBytes} allowed`)
    }
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > options.maxBytes) throw new UpstreamError(`GET ${current} sent more than the ${options.maxBytes} bytes allowed`)
        chunks.push(chunk)
      }
    } catch (err) {
      response.destroy()
      if (err instanceof UpstreamError) throw err
      throw new UpstreamError(signal.aborted ? `GET ${current} took longer than allowed` : `GET ${current} failed: ${describeError(err)}`)
    }
    return Buffer.concat(chunks)
  }
  throw new UpstreamError(`GET ${url} redirected more than ${MAX_REDIRECTS} times`)
}

async function send (target: URL, options: GetOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(target, {
      method: 'GET',
      headers: { 'user-agent': 'buildhaus-watch/1', accept: '*/*', ...options.headers },
      lookup: options.policy.lookupFunction(),
      signal
    }, resolve)
    req.on('error', (err) => {
      reject(signal.aborted ? new DeadlineError(`GET ${target.toString()} took longer than allowed`) : new UpstreamError(`GET ${target.toString()} failed: ${describeError(err)}`))
    })
    req.end()
  })
}
