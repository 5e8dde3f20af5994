// @ts-check
// The mesh as this node sees it: every live member (and itself), what it
// offers, how busy it is, when it was last heard, its reputation from the
// public log, and any key caught forking its chain.

import { html, nothing, render } from 'lit-html'
import { repeat } from 'lit-html/directives/repeat.js'
import { getJson } from './api.js'
import { elapsed, find, keyTag, messageOf, short, timeTag } from './format.js'

/** @typedef {import('./types.js').PeerView} PeerView */
/** @typedef {import('./types.js').PeersResponse} PeersResponse */
/** @typedef {import('./types.js').Page} Page */
/** @typedef {{ author: string, seq: number, ids: string[] }} ForkProofView */

/** Heartbeats are not events: refresh the table this often while it is shown. */
const REFRESH_MS = 3_000

/** @param {PeerView} peer */
function reputationCell (peer) {
  const r = peer.reputation
  if (r === undefined || r.results === 0) return html`<td class="muted">no results yet</td>`
  const percent = Math.round(r.score * 100)
  return html`<td><meter min="0" max="100" value=${percent} aria-hidden="true"></meter> ${percent}% <span class="hint">(${r.agreed} agreed, ${r.disagreed} disagreed, of ${r.results})</span></td>`
}

/** @param {PeerView} peer */
function runningCell (peer) {
  if (peer.running.length === 0) return nothing
  return html`<ul class="running">${peer.running.map((slot) => {
    const [job, selector] = slot.split('/')
    return html`<li><a href="#/job/${job}/${encodeURIComponent(selector ?? '')}"><code>${short(job)}</code></a> ${selector ?? ''}</li>`
  })}</ul>`
}

/**
 * How this node reaches a peer.
 * @type {Record<string, string>}
 */
const REACH_HINTS = {
  direct: 'a direct connection',
  'hole-punched': 'a direct connection that replaced a relayed one (DCUtR)',
  relayed: 'only through a relay, within the relay\'s limits',
  none: 'no connection: heard through gossip'
}

/**
 * How others reach this node.
 * @type {Record<string, string>}
 */
const REACHABILITY_HINTS = {
  public: 'others can dial this node directly',
  relayed: 'others reach this node through a relay it holds a reservation on',
  private: 'others cannot dial this node (no public address, no relay reservation yet)'
}

/** @param {PeerView} peer */
function reachCell (peer) {
  const value = peer.self ? peer.reachability : peer.reach
  if (value === undefined) return html`<td class="muted">—</td>`
  const label = peer.self ? (value === 'relayed' ? 'via a relay' : value) : (value === 'none' ? 'gossip only' : value)
  const hint = (peer.self ? REACHABILITY_HINTS : REACH_HINTS)[value] ?? ''
  return html`<td class="reach reach-${value}" title=${hint}>${label}</td>`
}

/** @param {PeerView} peer */
function peerRow (peer) {
  const used = Math.max(0, peer.slots - peer.free)
  const accepts = [peer.accepts.network ? 'network' : '', peer.accepts.root ? 'root' : ''].filter((x) => x !== '').join(', ') || 'neither network nor root'
  // The ticker writes "… ago" into [data-ago] every second: it holds no binding, only static text.
  const seen = peer.self ? 'now' : html`<span data-ago=${peer.lastSeen}>…</span> <span class="hint">${timeTag(peer.lastSeen)}</span>`
  return html`<tr class="${peer.equivocating === true ? 'equivocating' : ''}${peer.self ? ' self' : ''}">
<th scope="row"><code class="key" title=${peer.peerId}>${peer.peerId.slice(-12)}</code>${peer.self ? html` <span class="tag">this node</span>` : nothing} ${peer.equivocating === true ? html`<strong class="flag">equivocating: forked its chain, not believed</strong>` : nothing}<br><span class="hint">key ${keyTag(peer.author)}</span></th>
<td>${peer.platforms.length > 0 ? peer.platforms.map((p, i) => html`${i > 0 ? ' ' : ''}<code>${p}</code>`) : '—'}</td>
<td>${used}/${peer.slots}${runningCell(peer)}</td>
<td>${seen}</td>
${reachCell(peer)}
${reputationCell(peer)}
<td>${peer.version}</td>
<td>${accepts}</td>
<td>${peer.api !== undefined && /^https?:\/\//.test(peer.api) ? html`<a href="${peer.api}/" rel="noreferrer">${peer.api}</a>` : '—'}</td>
</tr>`
}

/** @param {ForkProofView[]} forks */
function forksTemplate (forks) {
  if (forks.length === 0) return html`<p>No key has been caught signing two entries at one place in its chain.</p>`
  return html`<table><caption>Fork proofs</caption><thead><tr><th scope="col">Author</th><th scope="col">Seq</th><th scope="col">Conflicting entries</th></tr></thead><tbody>${forks.map((f) => html`<tr class="equivocating"><th scope="row">${keyTag(f.author)}</th><td>${f.seq}</td><td>${f.ids.map((id, i) => html`${i > 0 ? html`<br>` : nothing}<code>${id}</code>`)}</td></tr>`)}</tbody></table>`
}

/**
 * @param {HTMLElement} main
 * @returns {Page}
 */
export function mountPeers (main) {
  let stopped = false
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer
  render(html`<section aria-labelledby="peers-title">
<h1 id="peers-title" tabindex="-1">Peers</h1>
<p class="muted" id="peers-note" aria-live="polite">Loading…</p>
<div class="table-wrap"><table class="peers" id="peers-table">
<caption class="sr">Live members of the mesh and this node</caption>
<thead><tr><th scope="col">Peer</th><th scope="col">Platforms</th><th scope="col">Slots in use</th><th scope="col">Last seen</th><th scope="col">Reached</th><th scope="col">Reputation</th><th scope="col">Version</th><th scope="col">Accepts</th><th scope="col">API</th></tr></thead>
<tbody></tbody></table></div>
<h2>Equivocation</h2>
<div id="forks"></div>
</section>`, main)
  const tbody = find(main, '#peers-table tbody', HTMLTableSectionElement)
  const note = find(main, '#peers-note', HTMLElement)
  const forksBox = find(main, '#forks', HTMLElement)

  async function load () {
    clearTimeout(timer)
    try {
      const [peersBody, forksBody] = await Promise.all([getJson('/api/peers'), getJson('/api/forks')])
      const { peers } = /** @type {PeersResponse} */ (peersBody)
      const { forks } = /** @type {{ forks: ForkProofView[] }} */ (forksBody)
      if (stopped) return
      render(repeat(peers, (p) => p.peerId, peerRow), tbody)
      const slots = peers.reduce((n, p) => n + p.slots, 0)
      const used = peers.reduce((n, p) => n + Math.max(0, p.slots - p.free), 0)
      note.textContent = `${peers.length} node${peers.length === 1 ? '' : 's'} (this one and ${peers.length - 1} live peer${peers.length === 2 ? '' : 's'}), ${used} of ${slots} build slots in use.`
      render(forksTemplate(forks), forksBox)
      const now = Date.now()
      for (const el of tbody.querySelectorAll('[data-ago]')) if (el instanceof HTMLElement) el.textContent = `${elapsed(Number(el.dataset.ago), now)} ago`
    } catch (err) {
      if (!stopped) note.textContent = `Could not load the peers: ${messageOf(err)}`
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS)
  }
  void load()

  return {
    focus: () => { find(main, 'h1', HTMLElement).focus() },
    peers: () => { void load() },
    fork: () => { void load() },
    resync: () => { void load() },
    unmount () {
      stopped = true
      clearTimeout(timer)
    }
  }
}
