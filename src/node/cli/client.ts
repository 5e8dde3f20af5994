import { readFile } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { describeError, UsageError } from '../../util/errors.js'
import { processAlive, readApiFile, type ApiFile } from '../api/file.js'
import type { ApiErrorBody } from '../api/types.js'
import { ApiRequestError, NodeNotRunningError } from '../errors.js'
import { homePaths, resolveHome } from '../home/home.js'

/** Default deadline of one API request. */
export const CLIENT_TIMEOUT_MS = 10_000
/** Largest JSON answer read. */
export const CLIENT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
/** Longest line a stream may send. */
export const CLIENT_MAX_LINE_BYTES = 1024 * 1024

export interface LocateOptions {
  /** `--api URL`: talk to this node, whatever the home says. */
  api?: string
  /** `--home DIR` (else $BUILDHAUS_HOME, else the per-user data dir): use the node running there. */
  home?: string
  env?: NodeJS.ProcessEnv
}

/** Where a node's API is, and how we learnt it (for error messages that say what to do). */
export interface LocatedNode {
  url: string
  /** Set when found through a home's api.json. */
  home?: string
  apiFile?: ApiFile
}

/**
 * Find the running node: `--api` if given, else the api.json the node wrote in
 * its home. Says clearly when there is none, or when api.json is a crash's leftover.
 */
export async function locateNode (options: LocateOptions): Promise<LocatedNode> {
  if (options.api !== undefined) return { url: parseApiUrl(options.api) }
  const home = resolveHome(options.home, options.env ?? process.env)
  const path = homePaths(home).apiFile
  const found = await readApiFile(path)
  if (found.state === 'missing') {
    throw new NodeNotRunningError(`no node is running in ${home} (it has no api.json); start one with \`buildhaus-node join --home ${home}\`, or pass --api URL`)
  }
  if (found.state === 'malformed') {
    throw new NodeNotRunningError(`${path} is unreadable (${found.reason}); restart the node with \`buildhaus-node join --home ${home}\` to rewrite it, or pass --api URL`)
  }
  if (!processAlive(found.info.pid)) {
    throw new NodeNotRunningError(`the node in ${home} is not running: its api.json names pid ${found.info.pid}, which has exited (a leftover of a crash, harmless); start it with \`buildhaus-node join --home ${home}\``)
  }
  return { url: found.info.url, home, apiFile: found.info }
}

/** `--api` accepts `http://host:port` or just `host:port`. */
export function parseApiUrl (text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new UsageError(`--api ${JSON.stringify(text)} is not a URL; write it like http://127.0.0.1:4711`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--api ${text} is not an http(s) URL; write it like http://127.0.0.1:4711`)
  return url.origin
}

export interface NodeClientOptions {
  timeoutMs?: number
  /** Bearer token, for mutations from another machine. */
  token?: string
  maxResponseBytes?: number
}

export interface RequestOptions {
  signal?: AbortSignal
  timeoutMs?: number
}

/** A node's answer: its status and its body, not yet read. */
interface Answer {
  status: number
  ok: boolean
  body: IncomingMessage
}

/**
 * The CLI's way to talk to a node's API: JSON reads and writes with a
 * deadline and a size bound, and line streams (NDJSON, server-sent events).
 * Errors are one sentence: the node's own `{ error }` answer, or what to do
 * when no node answers.
 */
export class NodeClient {
  readonly url: string
  private readonly located: LocatedNode
  private readonly timeoutMs: number
  private readonly token?: string
  private readonly maxResponseBytes: number

  constructor (located: LocatedNode | string, options: NodeClientOptions = {}) {
    this.located = typeof located === 'string' ? { url: parseApiUrl(located) } : located
    this.url = this.located.url
    this.timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS
    if (options.token !== undefined) this.token = options.token
    this.maxResponseBytes = options.maxResponseBytes ?? CLIENT_MAX_RESPONSE_BYTES
  }

  async getJson<T> (path: string, options: RequestOptions = {}): Promise<T> {
    return await this.requestJson<T>('GET', path, undefined, options)
  }

  async postJson<T> (path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return await this.requestJson<T>('POST', path, body, options)
  }

  /** Any other method (DELETE) with no body; the answer is JSON. */
  async deleteJson<T> (method: string, path: string, signal?: AbortSignal): Promise<T> {
    return await this.requestJson<T>(method, path, undefined, signal !== undefined ? { signal } : {})
  }

  /** POST raw bytes (a blob upload); the answer is JSON. */
  async postBytes<T> (path: string, bytes: Uint8Array, options: RequestOptions = {}): Promise<T> {
    return await this.requestJson<T>('POST', path, bytes, options)
  }

  /**
   * The response body of `path` as lines, until the server ends it or
   * `signal` aborts. The deadline covers the connection and headers only.
   */
  async * stream (path: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<string> {
    const connect = AbortSignal.timeout(this.timeoutMs)
    const controller = new AbortController()
    const onAbort = (): void => { controller.abort(options.signal?.reason) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const onConnectTimeout = (): void => { controller.abort(connect.reason) }
    connect.addEventListener('abort', onConnectTimeout, { once: true })
    try {
      const response = await this.send('GET', path, undefined, controller.signal)
      connect.removeEventListener('abort', onConnectTimeout)
      if (!response.ok) throw await this.errorOf(response, 'GET', path)
      const decoder = new TextDecoder()
      let pending = ''
      for await (const chunk of chunksOf(response.body, controller.signal)) {
        pending += decoder.decode(chunk, { stream: true })
        let newline: number
        while ((newline = pending.indexOf('\n')) >= 0) {
          yield pending.slice(0, newline).replace(/\r$/, '')
          pending = pending.slice(newline + 1)
        }
        if (pending.length > CLIENT_MAX_LINE_BYTES) {
          throw new ApiRequestError(`the node at ${this.url} sent a line longer than ${CLIENT_MAX_LINE_BYTES} bytes on ${path}; is it a buildhaus node?`)
        }
      }
      pending += decoder.decode()
      if (pending !== '') yield pending
    } finally {
      connect.removeEventListener('abort', onConnectTimeout)
      options.signal?.removeEventListener('abort', onAbort)
      controller.abort()
    }
  }

  /**
   * GET `path` and hand back the answer's body as a byte stream (a blob
   * download). The deadline covers the connection and headers; the caller
   * bounds and checks what it reads.
   */
  async getBytes (path: string, options: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    const connect = AbortSignal.timeout(this.timeoutMs)
    const controller = new AbortController()
    const onAbort = (): void => { controller.abort(options.signal?.reason) }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const onConnectTimeout = (): void => { controller.abort(connect.reason) }
    connect.addEventListener('abort', onConnectTimeout, { once: true })
    try {
      const response = await this.send('GET', path, undefined, controller.signal)
      if (!response.ok) throw await this.errorOf(response, 'GET', path)
      const body = response.body
      return (async function * () {
        try {
          yield * chunksOf(body, controller.signal)
        } finally {
          options.signal?.removeEventListener('abort', onAbort)
          controller.abort()
        }
      })()
    } finally {
      connect.removeEventListener('abort', onConnectTimeout)
    }
  }

  private async requestJson<T> (method: string, path: string, body: unknown, options: RequestOptions): Promise<T> {
    const deadline = AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs)
    const signal = options.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline
    const response = await this.send(method, path, body, signal)
    if (!response.ok) throw await this.errorOf(response, method, path)
    const text = await this.readBounded(response, method, path, signal)
    try {
      return JSON.parse(text) as T
    } catch {
      throw new ApiRequestError(`the answer to ${method} ${path} from ${this.url} is not JSON; is that address a buildhaus node?`, { status: response.status })
    }
  }

  /**
   * One request with node:http (not fetch, whose implementation, undici,
   * a command loaded at its first request; node:http is taken as its
   * CommonJS module, below, for the same reason). A new connection each time, closed after the
   * answer, so that nothing keeps the command's process alive; a redirect is
   * an error, as no node sends one.
   */
  private async send (method: string, path: string, body: unknown, signal: AbortSignal): Promise<Answer> {
    const url = new URL(path, this.url)
    const headers: Record<string, string> = { accept: 'application/json' }
    const payload = body === undefined ? undefined : body instanceof Uint8Array ? body : Buffer.from(JSON.stringify(body))
    if (payload !== undefined) {
      headers['content-type'] = body instanceof Uint8Array ? 'application/octet-stream' : 'application/json'
      headers['content-length'] = String(payload.byteLength)
    }
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    try {
      // The CommonJS modules, not an ESM import: that evaluates every export, and node:http's lazy
      // ones (WebSocket…) load undici, ~30 ms of a command's start here (BENCHMARKS.md, sixteenth
      // session). TLS only for a node behind https: a local node needs none.
      const request = process.getBuiltinModule(url.protocol === 'https:' ? 'node:https' : 'node:http').request
      return await new Promise<Answer>((resolve, reject) => {
        const sent = request(url, { method, headers, signal, agent: false }, (answer) => {
          const status = answer.statusCode ?? 0
          if (status >= 300 && status < 400) {
            answer.destroy()
            reject(new ApiRequestError(`${method} ${path} at ${this.url} answered with a redirect (HTTP ${status}); is that address a buildhaus node?`, { status }))
            return
          }
          resolve({ status, ok: status >= 200 && status < 300, body: answer })
        })
        sent.once('error', reject)
        sent.end(payload)
      })
    } catch (err) {
      throw this.unreachable(err, signal)
    }
  }

  private async readBounded (response: Answer, method: string, path: string, signal: AbortSignal): Promise<string> {
    const chunks: Uint8Array[] = []
    let size = 0
    try {
      for await (const chunk of chunksOf(response.body, signal)) {
        size += chunk.byteLength
        if (size > this.maxResponseBytes) {
          throw new ApiRequestError(`the answer to ${method} ${path} from ${this.url} is larger than ${this.maxResponseBytes} bytes; is that address a buildhaus node?`)
        }
        chunks.push(chunk)
      }
    } catch (err) {
      if (err instanceof ApiRequestError || signal.aborted) throw this.unreachable(err, signal)
      // The answer had begun: the node is there, and stopped mid-answer.
      throw new ApiRequestError(`the node at ${this.url} closed the connection before its answer to ${method} ${path} was complete; it may have stopped or restarted, so try again`, { cause: err })
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  private async errorOf (response: Answer, method: string, path: string): Promise<ApiRequestError> {
    let body: Partial<ApiErrorBody> | undefined
    try {
      body = JSON.parse(await readPrefix(response.body, 64 * 1024)) as Partial<ApiErrorBody>
    } catch {}
    const remote = body?.error
    if (remote !== undefined && typeof remote.message === 'string' && typeof remote.name === 'string') {
      // A refusal for want of a token this command could have sent: say how to give it.
      const hint = response.status === 403 && this.token === undefined && /API token/.test(remote.message)
        ? '; this command found no token to send: give the node\'s --home (its api-token is read from there) or set BUILDHAUS_API_TOKEN'
        : ''
      return new ApiRequestError(`${remote.message}${hint}`, { status: response.status, remoteName: remote.name })
    }
    return new ApiRequestError(`${method} ${path} at ${this.url} failed with HTTP ${response.status}; is that address a buildhaus node of a compatible version?`, { status: response.status })
  }

  /** Say why no answer came, and what to do, in one sentence. */
  private unreachable (err: unknown, signal: AbortSignal): Error {
    if (err instanceof ApiRequestError || err instanceof NodeNotRunningError) return err
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    const code = (err as { code?: string }).code ?? cause?.code
    const { home, apiFile } = this.located
    if (signal.aborted) {
      const reason: unknown = signal.reason
      if (reason instanceof DOMException && reason.name === 'TimeoutError') {
        return new NodeNotRunningError(`the node at ${this.url} did not answer in time; it may be overloaded or stuck, so try again or restart it`, { cause: err })
      }
      return reason instanceof Error ? reason : new NodeNotRunningError('the request was interrupted')
    }
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET') {
      if (home !== undefined && apiFile !== undefined) {
        if (!processAlive(apiFile.pid)) {
          return new NodeNotRunningError(`the node in ${home} is not running: its api.json names pid ${apiFile.pid}, which has exited (a leftover of a crash, harmless); start it with \`buildhaus-node join --home ${home}\``, { cause: err })
        }
        return new NodeNotRunningError(`no node answers at ${this.url}, the address in ${home}/api.json (connection refused); it may be starting or stopping, so try again in a moment or restart it with \`buildhaus-node join --home ${home}\``, { cause: err })
      }
      return new NodeNotRunningError(`no node answers at ${this.url} (connection refused); check the address, or start a node with \`buildhaus-node join\``, { cause: err })
    }
    return new NodeNotRunningError(`cannot reach the node at ${this.url} (${code ?? describeError(cause ?? err)}); check the address and that the node is running`, { cause: err })
  }
}

/**
 * Locate the node (see `locateNode`) and return a client for it. The API
 * token, which every change needs (src/node/api/auth.ts), comes from the
 * options, else $BUILDHAUS_API_TOKEN, else the home's api-token file when
 * this user can read it. With `--api URL` the home's token is sent only when
 * `--home` names it too: a URL alone may be another node, which must not
 * learn this one's token.
 */
export async function connectNode (options: LocateOptions & NodeClientOptions): Promise<NodeClient> {
  const located = await locateNode(options)
  const env = options.env ?? process.env
  let token = options.token ?? (env.BUILDHAUS_API_TOKEN !== undefined && env.BUILDHAUS_API_TOKEN !== '' ? env.BUILDHAUS_API_TOKEN : undefined)
  if (token === undefined && (options.api === undefined || options.home !== undefined)) {
    try {
      token = (await readFile(homePaths(resolveHome(options.home, env)).apiToken, 'utf8')).trim()
    } catch {
      // No readable token: reads work anyway; a change is refused with a 403 that says how to give one.
    }
  }
  return new NodeClient(located, { ...options, ...(token !== undefined ? { token } : {}) })
}

/**
 * An answer's body, chunk by chunk, until it ends or `signal` aborts (which
 * destroys it: a quiet event stream must not keep a watch waiting). The
 * body is destroyed too when the loop ends early.
 */
async function * chunksOf (body: IncomingMessage, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const onAbort = (): void => { body.destroy() }
  if (signal.aborted) onAbort()
  else signal.addEventListener('abort', onAbort, { once: true })
  try {
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (signal.aborted) break
        yield chunk
      }
    } catch (err) {
      // Destroyed because the signal aborted: say why, not how the stream ended.
      if (signal.aborted) throw signal.reason
      throw err
    }
    if (signal.aborted) throw signal.reason
    // The connection closed before the whole answer came.
    if (!body.complete) throw new ApiRequestError('the node closed the connection before its answer was complete; it may have stopped or restarted, so try again')
  } finally {
    signal.removeEventListener('abort', onAbort)
    body.destroy()
  }
}

/** At most `limit` bytes of an answer's body, as text (an error's JSON). */
async function readPrefix (body: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk)
    size += chunk.byteLength
    if (size >= limit) break
  }
  body.destroy()
  return Buffer.concat(chunks).toString('utf8').slice(0, limit)
}

/** `connectNode` from a command's `--api` and `--home` (either may be absent) and its environment. */
export async function connectFromOptions (options: { api?: string | undefined, home?: string | undefined }, env: NodeJS.ProcessEnv, extra: NodeClientOptions = {}): Promise<NodeClient> {
  return await connectNode({
    ...(options.api !== undefined ? { api: options.api } : {}),
    ...(options.home !== undefined ? { home: options.home } : {}),
    env,
    ...extra
  })
}
