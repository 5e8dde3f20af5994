// Talking to the node's HTTP API (same origin). Reads are plain GETs; changes
// carry the bearer token when the user gave one (needed from another machine).

const TOKEN_KEY = 'buildhaus.apiToken'

export function getToken () {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? ''
  } catch {
    return ''
  }
}

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
  constructor (status, name, message) {
    super(message)
    this.status = status
    this.name = name
  }
}

async function errorOf (response) {
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

async function request (method, path, { body, type, signal } = {}) {
  const headers = {}
  if (type !== undefined) headers['Content-Type'] = type
  const token = getToken()
  if (method !== 'GET' && token !== '') headers.Authorization = `Bearer ${token}`
  let response
  try {
    response = await fetch(path, { method, headers, body, signal, cache: 'no-store' })
  } catch (err) {
    if (err?.name === 'AbortError') throw err
    throw new ApiError(0, 'NetworkError', `the node did not answer ${method} ${path} (${err?.message ?? err}); is it still running?`)
  }
  if (!response.ok) throw await errorOf(response)
  return response
}

export async function getJson (path, options = {}) {
  return await (await request('GET', path, options)).json()
}

export async function getText (path, options = {}) {
  const response = await request('GET', path, options)
  return { text: await response.text(), headers: response.headers }
}

export async function postJson (path, value, options = {}) {
  const response = await request('POST', path, { ...options, body: JSON.stringify(value ?? {}), type: 'application/json' })
  return await response.json()
}

export async function postBytes (path, blob, options = {}) {
  const response = await request('POST', path, { ...options, body: blob, type: 'application/octet-stream' })
  return await response.json()
}

/** GET /api/health, once per page load: who this node is (its key decides whether it may cancel). */
let health
export function nodeHealth () {
  health ??= getJson('/api/health').catch((err) => { health = undefined; throw err })
  return health
}
