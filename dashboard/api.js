// @ts-check
// Talking to the node's HTTP API (same origin). Reads are plain GETs; changes
// carry the bearer token when the user gave one (needed from another machine).

/** @typedef {import('./types.js').HealthResponse} HealthResponse */

const TOKEN_KEY = 'buildhaus.apiToken'

/** @returns {string} */
export function getToken () {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? ''
  } catch {
    return ''
  }
}

/** @param {string} token */
export function setToken (token) {
  try {
    if (token === '') sessionStorage.removeItem(TOKEN_KEY)
    else sessionStorage.setItem(TOKEN_KEY, token)
  } catch {
    // Storage disabled: the token lives for this page only.
  }
}

/** An error answer of the API, `{ error: { name, message } }`, or a network failure. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the node did not answer
   * @param {string} name the API's stable error name
   * @param {string} message
   */
  constructor (status, name, message) {
    super(message)
    this.status = status
    this.name = name
  }
}

/** @param {Response} response */
async function errorOf (response) {
  /** @type {{ error?: { name?: string, message?: string } } | undefined} */
  let body
  try {
    body = await response.json()
  } catch {
    body = undefined
  }
  const name = body?.error?.name ?? `HTTP${response.status}`
  const message = body?.error?.message ?? `the node answered ${response.status} ${response.statusText}`
  return new ApiError(response.status, name, message)
}

/**
 * @typedef {object} RequestOptions
 * @property {BodyInit} [body]
 * @property {string} [type] the body's Content-Type
 * @property {AbortSignal} [signal]
 */

/**
 * @param {string} method
 * @param {string} path
 * @param {RequestOptions} [options]
 * @returns {Promise<Response>}
 */
async function request (method, path, { body, type, signal } = {}) {
  /** @type {Record<string, string>} */
  const headers = {}
  if (type !== undefined) headers['Content-Type'] = type
  const token = getToken()
  if (method !== 'GET' && token !== '') headers.Authorization = `Bearer ${token}`
  let response
  try {
    response = await fetch(path, { method, headers, body, signal, cache: 'no-store' })
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') throw err
    throw new ApiError(0, 'NetworkError', `the node did not answer ${method} ${path} (${err instanceof Error ? err.message : String(err)}); is it still running?`)
  }
  if (!response.ok) throw await errorOf(response)
  return response
}

/**
 * The answer as JSON, of a type the caller states with a cast (e.g. a JobView).
 * @param {string} path
 * @param {{ signal?: AbortSignal }} [options]
 * @returns {Promise<unknown>}
 */
export async function getJson (path, options = {}) {
  return await (await request('GET', path, options)).json()
}

/**
 * @param {string} path
 * @param {{ signal?: AbortSignal }} [options]
 * @returns {Promise<{ text: string, headers: Headers }>}
 */
export async function getText (path, options = {}) {
  const response = await request('GET', path, options)
  return { text: await response.text(), headers: response.headers }
}

/**
 * @param {string} path
 * @param {unknown} value
 * @param {{ signal?: AbortSignal }} [options]
 * @returns {Promise<unknown>}
 */
export async function postJson (path, value, options = {}) {
  const response = await request('POST', path, { ...options, body: JSON.stringify(value ?? {}), type: 'application/json' })
  return await response.json()
}

/**
 * @param {string} path
 * @param {Blob} blob
 * @param {{ signal?: AbortSignal }} [options]
 * @returns {Promise<unknown>}
 */
export async function postBytes (path, blob, options = {}) {
  const response = await request('POST', path, { ...options, body: blob, type: 'application/octet-stream' })
  return await response.json()
}

/** GET /api/health, once per page load: who this node is (its key decides whether it may cancel). */
/** @type {Promise<HealthResponse> | undefined} */
let health
/** @returns {Promise<HealthResponse>} */
export function nodeHealth () {
  health ??= getJson('/api/health').then((body) => /** @type {HealthResponse} */ (body)).catch((err) => { health = undefined; throw err })
  return health
}
