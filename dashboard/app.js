// @ts-check
// The dashboard's entry: one page, routed on the URL's hash.
//   #/                    the grid
//   #/job/<id>[/<sel>]    a job (scrolled to one platform)
//   #/peers               the mesh
//   #/submit              submit a source archive
// Job summaries live in one store kept current by the node's events, so
// coming back to the grid is instant.

import { html, render } from 'lit-html'
import { ApiError, getJson, getToken, nodeHealth, setToken } from './api.js'
import { elapsed, find, messageOf, short } from './format.js'
import { mountGrid, toGridJob } from './grid.js'
import { mountJob } from './job.js'
import { connectLive } from './live.js'
import { mountPeers } from './peers.js'
import { mountSubmit } from './submit.js'

/** @typedef {import('./types.js').GridJob} GridJob */
/** @typedef {import('./types.js').GridJobsResponse} GridJobsResponse */
/** @typedef {import('./types.js').Page} Page */

/** Job summaries newest first, by id. */
class JobStore {
  constructor () {
    /** @type {GridJob[]} */
    this.jobs = []
    /** @type {Map<string, number>} */
    this.position = new Map()
    this.loaded = false
  }

  /** @param {GridJob[]} jobs */
  setAll (jobs) {
    this.jobs = jobs
    this.reindex()
    this.loaded = true
  }

  /** Replace a known job in place, or put a new one where its time says (new jobs: on top). */
  /** @param {GridJob} summary */
  upsert (summary) {
    const at = this.position.get(summary.id)
    if (at !== undefined) {
      this.jobs[at] = summary
      return
    }
    let index = 0
    while (index < this.jobs.length && this.jobs[index].time > summary.time) index++
    this.jobs.splice(index, 0, summary)
    this.reindex()
  }

  reindex () {
    this.position = new Map(this.jobs.map((job, i) => [job.id, i]))
  }

  list () { return this.jobs }
  /** @param {string} id */
  indexOf (id) { return this.position.get(id) ?? -1 }
}

const store = new JobStore()
const main = find(document, '#main', HTMLElement)
const flashBox = find(document, '#flash', HTMLElement)
const liveStatus = find(document, '#live-status', HTMLElement)
/** @type {Page | undefined} */
let page
/** @type {Promise<void> | undefined} */
let loading
/**
 * Job events that arrived while the list was loading: applied over it, as they may be newer.
 * @type {GridJob[] | undefined}
 */
let heldEvents

/**
 * Show an error (or a notice) above the page until dismissed or replaced.
 * @param {string} message
 * @param {'error' | 'warning'} [kind]
 */
export function flash (message, kind = 'error') {
  flashBox.hidden = false
  flashBox.dataset.kind = kind
  render(html`<p>${message}</p><button type="button" class="dismiss">Dismiss</button>`, flashBox)
}

/**
 * A failed change: say why; a 403 means this browser needs the token.
 * @param {unknown} err
 * @param {string} doing
 */
export function reportError (err, doing) {
  if (err instanceof ApiError && err.status === 403) {
    flash(`${doing} was refused: ${err.message}. Enter the token under "API token" above.`)
    find(document, '#token-panel', HTMLDetailsElement).open = true
    find(document, '#token-input', HTMLInputElement).focus()
    return
  }
  flash(`${doing} failed: ${messageOf(err)}`)
}

flashBox.addEventListener('click', (event) => {
  if (event.target instanceof Element && event.target.closest('.dismiss') !== null) flashBox.hidden = true
})

async function loadJobs () {
  if (loading === undefined) heldEvents = []
  loading ??= getJson('/api/jobs?view=grid').then((body) => {
    store.setAll(/** @type {GridJobsResponse} */ (body).jobs)
    for (const summary of heldEvents ?? []) store.upsert(summary)
    page?.reload?.()
  }).catch((err) => {
    flash(`could not load the jobs: ${messageOf(err)}`)
  }).finally(() => {
    loading = undefined
    heldEvents = undefined
  })
  await loading
}

/** @typedef {{ name: 'job', id: string, platform?: string } | { name: 'grid' | 'peers' | 'submit' }} Route */

/** @returns {Route} */
function route () {
  const hash = location.hash.replace(/^#/, '') || '/'
  const parts = hash.split('/').filter((p) => p !== '').map(decodeURIComponent)
  const [page, id, platform] = parts
  if (page === 'job' && id !== undefined && /^[0-9a-f]{64}$/.test(id)) return { name: 'job', id, ...(platform !== undefined ? { platform } : {}) }
  if (page === 'peers') return { name: 'peers' }
  if (page === 'submit') return { name: 'submit' }
  return { name: 'grid' }
}

/** @param {boolean} first the page's first load */
function navigate (first) {
  page?.unmount?.()
  window.scrollTo(0, 0)
  const where = route()
  for (const link of document.querySelectorAll('a[data-nav]')) {
    if (!(link instanceof HTMLElement)) continue
    if (link.dataset.nav === where.name) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  const context = { store, flash, reportError }
  if (where.name === 'job') page = mountJob(main, where.id, where.platform, context)
  else if (where.name === 'peers') page = mountPeers(main)
  else if (where.name === 'submit') page = mountSubmit(main, context)
  else {
    page = mountGrid(main, store)
    if (!store.loaded) void loadJobs()
  }
  // Move focus to the new page's heading, as a page load would (not on the first load).
  if (!first) page.focus?.()
}

function tick () {
  const now = Date.now()
  for (const el of document.querySelectorAll('.elapsed')) if (el instanceof HTMLElement) el.textContent = elapsed(Number(el.dataset.since), now)
  for (const el of document.querySelectorAll('[data-ago]')) if (el instanceof HTMLElement) el.textContent = `${elapsed(Number(el.dataset.ago), now)} ago`
}

/**
 * `buildhaus-node join` prints a link whose fragment carries the API token
 * (a fragment never reaches a server): keep it for this tab, and take it
 * out of the address bar and the history before anything else reads it.
 */
function takeTokenFromLink () {
  const match = /^#token=([^&/#]+)$/.exec(location.hash)
  if (match === null) return
  // Out of the address bar first, whatever follows: a token must not stay on screen or in history.
  history.replaceState(null, '', `${location.pathname}${location.search}#/`)
  let token
  try {
    token = decodeURIComponent(match[1] ?? '')
  } catch {
    // A link cut or mangled in a copy (a stray %): say so instead of failing the whole page.
    flash('The link\'s token is damaged; open the link `buildhaus-node join` printed again, or paste api-token under "API token".', 'warning')
    return
  }
  setToken(token)
}

function setupToken () {
  const form = find(document, '#token-form', HTMLFormElement)
  const input = find(document, '#token-input', HTMLInputElement)
  const state = find(document, '#token-state', HTMLElement)
  const show = () => { state.textContent = getToken() !== '' ? 'a token is set for this tab' : 'no token set' }
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    setToken(input.value.trim())
    input.value = ''
    show()
  })
  find(document, '#token-forget', HTMLButtonElement).addEventListener('click', () => {
    setToken('')
    input.value = ''
    show()
  })
  show()
}

async function showNode () {
  try {
    const health = await nodeHealth()
    // The peer count is kept current by the live events (textContent below): a plain text node, no binding.
    render(html`node <code title=${health.peerId}>${short(health.author)}</code> · ${health.platforms.join(', ')} · <span id="peer-count" .textContent=${String(health.peers)}></span> peer${health.peers === 1 ? '' : 's'}`, find(document, '#node-info', HTMLElement))
  } catch (err) {
    flash(`the node does not answer: ${messageOf(err)}`)
  }
}

connectLive({
  job (summary) {
    const job = toGridJob(summary)
    if (heldEvents !== undefined) heldEvents.push(job)
    // Before the grid's first load there is no list to update; the page still hears of its job.
    if (store.loaded) store.upsert(job)
    page?.job?.(job)
  },
  peers (data) {
    const count = document.getElementById('peer-count')
    if (count !== null && typeof data?.count === 'number') count.textContent = String(data.count)
    page?.peers?.()
  },
  fork (data) {
    flash(`Key ${short(data?.author)} signed two different entries at seq ${data?.seq}: it forked its chain, and its results are no longer believed.`, 'warning')
    page?.fork?.()
  },
  status (state) {
    liveStatus.dataset.state = state
    liveStatus.textContent = state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : 'offline (retrying)'
  },
  resync () {
    if (store.loaded) void loadJobs()
    page?.resync?.()
  }
})

takeTokenFromLink()
setupToken()
void showNode()
window.addEventListener('hashchange', () => { navigate(false) })
navigate(true)
setInterval(tick, 1000)
