// @ts-check
// Small pure helpers shared by the pages: names, sizes, times, and the few
// tags every page shows. Markup is lit-html templates: what mesh members
// wrote goes into a binding (`${value}`), which lit-html escapes by
// construction. No page builds HTML from strings.

import { html, nothing } from 'lit-html'

/**
 * The first 12 hex digits name a key, job or hash well enough on screen (the CLI does the same).
 * @param {string | undefined} hex
 */
export function short (hex) {
  return String(hex ?? '').slice(0, 12)
}

/** @param {number} n */
export function bytes (n) {
  if (!Number.isFinite(n)) return '?'
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`
}

/**
 * A duration in ms as people read it: 42 ms, 3.2 s, 4 min 05 s, 2 h 03 min.
 * @param {number} ms
 */
export function duration (ms) {
  if (!Number.isFinite(ms) || ms < 0) ms = 0
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`
  const h = Math.floor(m / 60)
  return `${h} h ${String(m % 60).padStart(2, '0')} min`
}

/**
 * Elapsed time for the live counters: whole seconds, never negative (the claimant's clock may run ahead).
 * @param {number} since ms since the epoch
 * @param {number} [now]
 */
export function elapsed (since, now = Date.now()) {
  const s = Math.max(0, Math.floor((now - since) / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
}

const pad = (/** @type {number} */ n) => String(n).padStart(2, '0')

/**
 * Local wall time: the time alone for today, the date too otherwise.
 * @param {number} ms
 * @param {Date} [now]
 */
export function clock (ms, now = new Date()) {
  const d = new Date(ms)
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  if (d.toDateString() === now.toDateString()) return time
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`
}

/** @param {number} ms */
export function isoTime (ms) {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : ''
}

/**
 * Whether a platform's or job's verdict is one people must look at.
 * @param {string} verdict
 */
export function isProblem (verdict) {
  return verdict === 'failed' || verdict === 'mismatch' || verdict === 'unmatched'
}

/**
 * A symbol beside each state, so colour is never the only signal.
 * @type {Record<string, string>}
 */
export const GLYPHS = {
  verified: '✓',
  failed: '✗',
  mismatch: '≠',
  running: '▶',
  queued: '…',
  pending: '…',
  unmatched: '⚠',
  cancelled: '⊘',
  agree: '✓'
}

/**
 * `<time>` with the full date in its title.
 * @param {number} ms
 */
export function timeTag (ms) {
  if (!Number.isFinite(ms)) return nothing
  return html`<time datetime=${isoTime(ms)} title=${new Date(ms).toString()}>${clock(ms)}</time>`
}

/**
 * A live counter: the page's ticker rewrites every `.elapsed` from its
 * data-since each second. Its text is a property, not a child of the
 * template, so the ticker's writes and lit-html's never meet.
 * @param {number} since
 * @param {string} [label]
 */
export function elapsedTag (since, label = '') {
  return html`<span class="elapsed" data-since=${since} aria-label=${label !== '' ? label : nothing} .textContent=${elapsed(since)}></span>`
}

/**
 * A hex key shown short, the whole of it in the title.
 * @param {string} hex
 * @param {string} [self] this node's key: its own is marked
 */
export function keyTag (hex, self) {
  const mine = self !== undefined && hex === self
  return html`<code class="key" title=${hex}>${short(hex)}</code>${mine ? html` <span class="tag">this node</span>` : nothing}`
}

/**
 * @param {string} hash
 * @param {{ tail?: number, download?: string }} [options]
 */
export function blobUrl (hash, options = {}) {
  const params = new URLSearchParams()
  if (options.tail !== undefined) params.set('tail', String(options.tail))
  if (options.download !== undefined) params.set('download', options.download)
  const query = params.toString()
  return `/api/blobs/${encodeURIComponent(hash)}${query !== '' ? `?${query}` : ''}`
}

/**
 * The file name a download of `path` should get (the last part of the artifact path).
 * @param {string} path
 */
export function baseName (path) {
  const parts = String(path).split('/')
  return parts[parts.length - 1] || 'artifact'
}

/**
 * The element `selector` finds under `root`, of the type the page expects:
 * a missing or different element is a bug in the page, said at once.
 * @template {Element} T
 * @param {ParentNode} root
 * @param {string} selector
 * @param {{ new (): T }} type
 * @returns {T}
 */
export function find (root, selector, type) {
  const element = root.querySelector(selector)
  if (!(element instanceof type)) throw new Error(`the page has no ${type.name} ${selector}`)
  return element
}

/**
 * What went wrong, in one sentence, whatever was thrown.
 * @param {unknown} err
 */
export function messageOf (err) {
  return err instanceof Error ? err.message : String(err)
}
