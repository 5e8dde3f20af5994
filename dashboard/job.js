// @ts-check
// A job's page: its spec and source, each platform's builders side by side
// (status, step timings, artifact hashes with differences marked), logs
// (tail first), diagnosis reports, the signed entries, cancel and re-run.

import { html, nothing, render } from 'lit-html'
import { repeat } from 'lit-html/directives/repeat.js'
import { getJson, getText, nodeHealth, postJson } from './api.js'
import { baseName, blobUrl, bytes, duration, elapsedTag, find, GLYPHS, keyTag, messageOf, short, timeTag } from './format.js'
import { cellState, gridPlatform } from './grid.js'

/** @typedef {import('./types.js').JobView} JobView */
/** @typedef {import('./types.js').PlatformView} PlatformView */
/** @typedef {import('./types.js').ResultView} ResultView */
/** @typedef {import('./types.js').StepResult} StepResult */
/** @typedef {import('./types.js').BuildEnv} BuildEnv */
/** @typedef {import('./types.js').ResultEnvironment} ResultEnvironment */
/** @typedef {import('./types.js').LiveLogEvent} LiveLogEvent */
/** @typedef {import('./types.js').LiveEndEvent} LiveEndEvent */
/** @typedef {import('./types.js').Page} Page */
/** @typedef {import('./types.js').PageContext} PageContext */
/** @typedef {import('lit-html').TemplateResult} TemplateResult */
/** @typedef {{ text: string, offset: number, size: number }} LoadedLog */

/** The log viewer first fetches this many bytes from the end: where a build failed. */
export const LOG_TAIL_BYTES = 65536

/** Blobs are content-addressed, so what was fetched once stays true: keep logs and reports across re-renders. */
/** @type {Map<string, string | LoadedLog>} */
const blobTexts = new Map()
const BLOB_CACHE_ENTRIES = 64

/**
 * @param {string} key
 * @param {string | LoadedLog} value
 */
function remember (key, value) {
  blobTexts.delete(key)
  blobTexts.set(key, value)
  const oldest = blobTexts.keys().next()
  if (blobTexts.size > BLOB_CACHE_ENTRIES && oldest.done !== true) blobTexts.delete(oldest.value)
}

/**
 * Items joined by a separator (a template, or text).
 * @param {unknown[]} items
 * @param {string} separator
 */
function joined (items, separator) {
  return items.map((item, i) => (i === 0 ? item : html`${separator}${item}`))
}

/**
 * @param {string} kind
 * @param {string} [text]
 */
function badge (kind, text = kind) {
  return html`<span class="badge v-${kind}"><span aria-hidden="true">${GLYPHS[kind] ?? ''}</span> ${text}</span>`
}

/** @param {boolean} value */
function yesNo (value) {
  return value ? 'yes' : 'no'
}

/** @param {string} status */
function statusTag (status) {
  const kind = status === 'pass' ? 'verified' : status === 'refused' ? 'cancelled' : 'failed'
  return html`<span class="status v-${kind}">${status}</span>`
}

/** @param {StepResult | undefined} step */
function stepCell (step) {
  if (step === undefined) return html`<td class="na">did not run</td>`
  const bad = step.exit !== 0
  const outcome = step.exit !== null ? `exit ${step.exit}` : step.signal !== undefined ? `killed by ${step.signal}` : 'did not finish'
  return html`<td class=${bad ? 'bad' : 'ok'}>${outcome} · ${duration(step.ms)}</td>`
}

/** Results compared side by side: each builder's latest (refusals built nothing). */
/** @param {PlatformView} platform */
function comparedResults (platform) {
  return platform.results.filter((r) => r.latest && r.status !== 'refused')
}

/**
 * @param {ResultView} result
 * @param {string | undefined} self
 */
function builderHead (result, self) {
  return html`<th scope="col">${keyTag(result.builder, self)}<br>${statusTag(result.status)}</th>`
}

/**
 * @param {JobView} view
 * @param {ResultView[]} results
 * @param {string | undefined} self
 */
function stepsTable (view, results, self) {
  const names = [...new Set([...view.spec.steps.map((s) => s.name), ...results.flatMap((r) => r.steps.map((s) => s.name))])]
  return html`<table class="side steps"><caption>Step timings</caption><thead><tr><th scope="col">Step</th>${results.map((r) => builderHead(r, self))}</tr></thead><tbody>${names.map((name) => html`<tr><th scope="row">${name}</th>${results.map((r) => stepCell(r.steps.find((s) => s.name === name)))}</tr>`)}<tr class="total"><th scope="row">whole run</th>${results.map((r) => html`<td>${duration(r.end - r.start)}</td>`)}</tr></tbody></table>`
}

/**
 * @param {PlatformView} platform
 * @param {ResultView[]} results
 * @param {string | undefined} self
 */
function artifactsTable (platform, results, self) {
  const paths = [...new Set(results.flatMap((r) => r.artifacts.map((a) => a.path)))].sort()
  if (paths.length === 0) return html`<p class="muted">No artifacts.</p>`
  const listed = new Set(platform.mismatch?.files ?? [])
  const rows = paths.map((path) => {
    const found = results.map((r) => r.artifacts.find((a) => a.path === path))
    const hashes = new Set(found.map((a) => a?.sha256 ?? 'missing'))
    const differs = hashes.size > 1 || listed.has(path)
    // Each hash gets a number, so equal and different hashes read as such without colour.
    const numbering = new Map([...hashes].map((h, i) => [h, i + 1]))
    const cells = found.map((a) => {
      if (a === undefined) return html`<td class="missing">missing</td>`
      const mark = differs ? html` <span class="variant">#${numbering.get(a.sha256)}</span>` : nothing
      return html`<td class="hash${differs ? ' diff' : ''}"><a href=${blobUrl(a.sha256, { download: baseName(a.path) })} download=${baseName(a.path)} title="download ${a.path} (sha256 ${a.sha256})"><code>${a.sha256}</code></a>${mark} <span class="size">${bytes(a.size)}</span></td>`
    })
    return html`<tr class=${differs ? 'differs' : 'same'}><th scope="row"><code>${path}</code></th><td class="agree">${differs ? html`<strong>${GLYPHS.mismatch} differs</strong>` : `${GLYPHS.agree} same`}</td>${cells}</tr>`
  })
  return html`<table class="side artifacts"><caption>Artifacts (sha256; select one to download)</caption><thead><tr><th scope="col">Path</th><th scope="col">Across builders</th>${results.map((r) => builderHead(r, self))}</tr></thead><tbody>${rows}</tbody></table>`
}

/**
 * Name and version pairs as a list on demand (a builder's tools, an environment's packages).
 * @param {string} title
 * @param {Record<string, string> | undefined} versions
 */
function versionsTemplate (title, versions) {
  const pairs = Object.entries(versions ?? {})
  if (pairs.length === 0) return nothing
  return html`<details><summary>${title}</summary><ul class="tools">${pairs.map(([k, v]) => html`<li><code>${k}</code> ${v}</li>`)}</ul></details>`
}

/**
 * The builder's fingerprint: the system on one line, its tools on demand;
 * for a build in an environment, its name and manifest (a blob to open), and
 * the versions of the packages the result records.
 * @param {BuildEnv} env
 * @param {ResultEnvironment | undefined} environment
 */
function envTemplate (env, environment) {
  const inside = environment === undefined
    ? nothing
    : html`<br>environment <strong>${environment.name}</strong> <a href=${blobUrl(environment.manifest)} title="its manifest: every package and version"><code>${environment.manifest.slice(0, 12)}</code></a>${versionsTemplate('packages', environment.packages)}`
  return html`${`${env.os} ${env.arch}, kernel ${env.kernel}, sandbox ${env.sandbox}`}${inside}${env.warning !== undefined ? html`<br><strong>warning:</strong> ${env.warning}` : nothing}${versionsTemplate('tools', env.tools)}`
}

/**
 * @param {PlatformView} platform
 * @param {string | undefined} self
 */
function resultsTable (platform, self) {
  if (platform.results.length === 0) return nothing
  const rows = platform.results.map((r) => {
    const vote = r.counted ? (r.agrees === false ? 'counted, disagrees' : r.agrees === true ? 'counted, agrees' : 'counted') : !r.latest ? 'superseded by a later result' : !r.trusted ? 'not trusted by this node' : 'not counted'
    return html`<tr class=${r.agrees === false ? 'differs' : nothing}><th scope="row">${keyTag(r.builder, self)}</th><td>${statusTag(r.status)}${r.reason !== undefined ? html` <span class="reason">${r.reason}</span>` : nothing}</td><td>${vote}</td><td>${timeTag(r.start)}</td><td>${duration(r.end - r.start)}</td><td class="env">${envTemplate(r.env, r.environment)}</td></tr>`
  })
  return html`<table class="results"><caption>Results</caption><thead><tr><th scope="col">Builder</th><th scope="col">Status</th><th scope="col">Vote</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Environment</th></tr></thead><tbody>${rows}</tbody></table>`
}

/**
 * @param {PlatformView} platform
 * @param {string | undefined} self
 */
function claimsList (platform, self) {
  const done = new Set(platform.results.map((r) => r.builder))
  const open = platform.claims.filter((c) => !done.has(c.builder))
  if (open.length === 0) return nothing
  const now = Date.now()
  // A lapsed lease still holds while the claimant's heartbeats list the build: say only what is certain.
  return html`<div class="claims"><h4>Building now</h4><ul>${open.map((c) => html`<li>${keyTag(c.builder, self)} claimed it ${elapsedTag(c.time)} ago${c.lease > now ? html`, lease until ${timeTag(c.lease)}` : nothing}</li>`)}</ul></div>`
}

/**
 * A builder's log, filled in (outside this template) when opened: the details keep their content across re-renders.
 * @param {ResultView & { log: string }} result
 * @param {string | undefined} self
 */
function logViewer (result, self) {
  return html`<details class="log" data-log=${result.log} data-size=${result.logSize} data-builder=${result.builder}><summary>Log of ${keyTag(result.builder, self)} (${statusTag(result.status)}, ${bytes(result.logSize)})</summary><div class="log-view"></div></details>`
}

/**
 * @param {JobView} view
 * @param {PlatformView} platform
 * @param {string | undefined} self
 */
function diagnosesTemplate (view, platform, self) {
  const mine = view.diagnoses.filter((d) => d.platform === platform.selector)
  if (mine.length === 0) {
    return platform.verdict === 'mismatch' ? html`<p class="muted">A builder of this platform will publish a diagnosis report comparing the differing files.</p>` : nothing
  }
  return repeat(mine, (d) => d.entry, (d) => html`<div class="diagnosis"><h4>${d.versus !== undefined ? `Cross-platform diagnosis (vs ${d.versus})` : 'Diagnosis'} by ${keyTag(d.author, self)} ${timeTag(d.time)}</h4><p>${d.summary}</p><p>Files: ${d.files.length > 0 ? joined(d.files.map((f) => html`<code>${f}</code>`), ', ') : 'none'}; builders: ${joined(d.builders.map((b) => keyTag(b, self)), ', ')}.</p><details class="report" data-report=${d.report}><summary>Diagnosis report</summary><div class="report-view"></div></details> <a href=${blobUrl(d.report, { download: `diagnosis-${short(view.id)}.txt` })}>download the report</a></div>`)
}

/**
 * @param {JobView} view
 * @param {PlatformView} platform
 * @param {string | undefined} self
 */
function platformSection (view, platform, self) {
  const state = cellState(view, gridPlatform(platform))
  const results = comparedResults(platform)
  const clock = state.since === undefined ? nothing : state.kind === 'running' ? html` Building for ${elapsedTag(state.since)}.` : html` Waiting for ${elapsedTag(state.since)}.`
  const failing = platform.results.find((r) => r.latest && r.status !== 'pass' && r.status !== 'refused' && r.log !== null)
  const mismatch = platform.mismatch === undefined
    ? nothing
    : html`<div class="mismatch"><h4>Disagreement</h4><p>${platform.mismatch.statusDiffers ? 'The builders disagree on the status. ' : ''}${platform.mismatch.files.length > 0 ? html`Differing files: ${joined(platform.mismatch.files.map((f) => html`<code>${f}</code>`), ', ')}.` : nothing}</p><ul>${platform.mismatch.groups.map((g) => html`<li>${joined(g.builders.map((b) => keyTag(b, self)), ', ')}: ${g.status}</li>`)}</ul></div>`
  const logs = /** @type {Array<ResultView & { log: string }>} */ (platform.results.filter((r) => r.log !== null))
  return html`<section class="platform" id="platform-${platform.selector}" data-selector=${platform.selector} aria-labelledby="h-${platform.selector}">
  <h2 id="h-${platform.selector}" tabindex="-1">${platform.selector} ${badge(state.kind, state.label)}</h2>
  <p class="reason">${state.reason}.${clock} Wants ${platform.replicas} builder${platform.replicas > 1 ? 's' : ''}, ${platform.quorum} agreeing to decide.</p>
  ${claimsList(platform, self)}
  <div class="live" data-platform=${platform.selector}></div>
  ${resultsTable(platform, self)}
  ${results.length > 0 ? html`${stepsTable(view, results, self)}${artifactsTable(platform, results, self)}` : nothing}
  ${mismatch}
  ${diagnosesTemplate(view, platform, self)}
  <div class="logs" data-open-first=${failing?.log ?? ''}>${repeat(logs, (r) => r.entry, (r) => logViewer(r, self))}</div>
</section>`
}

/** @param {JobView} view */
function specTemplate (view) {
  const spec = view.spec
  const limits = Object.entries(spec.limits ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'the builders\' defaults'
  const globs = (/** @type {string[]} */ list) => list.length > 0 ? joined(list.map((g) => html`<code>${g}</code>`), ', ') : 'none'
  return html`<section class="spec" aria-labelledby="spec-title"><h2 id="spec-title">Spec</h2>
<dl class="facts">
  <dt>Platforms</dt><dd>${joined(spec.platforms.map((p) => html`<code>${p.selector}</code> × ${p.replicas}`), ', ')}</dd>
  <dt>Timeout</dt><dd>${spec.timeout} s</dd>
  <dt>Network</dt><dd>${yesNo(spec.network)}</dd>
  <dt>Root</dt><dd>${yesNo(spec.root)}</dd>
  <dt>Limits</dt><dd>${limits}</dd>
  <dt>Artifacts</dt><dd>${globs(spec.artifacts)}</dd>
  <dt>Platform-independent</dt><dd>${globs(spec.independent)}</dd>
</dl>
<h3>Steps</h3><ol class="steps-list">${spec.steps.map((s) => html`<li><strong>${s.name}</strong><pre><code>${s.run}</code></pre></li>`)}</ol></section>`
}

/** @param {JobView} view */
function crossTemplate (view) {
  const cross = view.crossPlatform
  if (cross.verdict === 'none') return nothing
  const selectors = [...new Set(cross.files.flatMap((f) => Object.keys(f.hashes)))].sort()
  const rows = cross.files.map((f) => html`<tr class=${f.agree ? 'same' : 'differs'}><th scope="row"><code>${f.path}</code></th><td>${f.agree ? `${GLYPHS.agree} same` : html`<strong>${GLYPHS.mismatch} differs</strong>`}</td>${selectors.map((s) => html`<td class="hash${f.agree ? '' : ' diff'}">${f.hashes[s] !== undefined ? html`<code>${f.hashes[s]}</code>` : '—'}</td>`)}</tr>`)
  return html`<section class="cross" aria-labelledby="cross-title"><h2 id="cross-title">Across platforms ${badge(cross.verdict === 'agree' ? 'verified' : cross.verdict, cross.verdict)}</h2>
${cross.reason !== undefined ? html`<p class="reason">${cross.reason}</p>` : nothing}
${cross.files.length > 0 ? html`<table class="side"><caption>Platform-independent artifacts</caption><thead><tr><th scope="col">Path</th><th scope="col">Across platforms</th>${selectors.map((s) => html`<th scope="col">${s}</th>`)}</tr></thead><tbody>${rows}</tbody></table>` : nothing}</section>`
}

/**
 * @param {JobView} view
 * @param {string | undefined} self
 */
function actionsTemplate (view, self) {
  const open = !view.cancelled && view.platforms.some((p) => p.verdict === 'pending' || p.verdict === 'unmatched')
  return html`<div class="actions">${open && self === view.submitter ? html`<button type="button" data-action="cancel" class="danger">Cancel job</button>` : nothing}<button type="button" data-action="rerun">Re-run</button>${open && self !== view.submitter ? html`<span class="hint">Only the node that submitted it can cancel it.</span>` : nothing}</div>`
}

/**
 * The job's verdict, an open one said as running (someone builds it) or queued.
 * @param {JobView} view
 */
function jobKind (view) {
  if (view.verdict !== 'pending') return view.verdict
  const building = view.platforms.some((p) => {
    const reported = new Set(p.results.map((r) => r.builder))
    return p.verdict === 'pending' && p.claims.some((c) => !reported.has(c.builder))
  })
  return building ? 'running' : 'queued'
}

/**
 * @param {JobView} view
 * @param {string | undefined} self
 */
function pageTemplate (view, self) {
  return html`<article class="job-page" data-job=${view.id}>
<p class="crumbs"><a href="#/">Grid</a> › job</p>
<h1 id="job-title" tabindex="-1">${view.name} ${badge(jobKind(view))}</h1>
${view.reason !== undefined ? html`<p class="reason">${view.reason}</p>` : nothing}${view.cancelled ? html`<p class="reason">Cancelled by its submitter${view.cancelReason !== undefined ? `: ${view.cancelReason}` : ''}.</p>` : nothing}
${actionsTemplate(view, self)}
<dl class="facts">
  <dt>Job</dt><dd><code class="wrap">${view.id}</code></dd>
  <dt>Submitter</dt><dd>${keyTag(view.submitter, self)}</dd>
  <dt>Submitted</dt><dd>${timeTag(view.time)}</dd>
  <dt>Source</dt><dd><a href=${blobUrl(view.source, { download: `${view.name}-${short(view.source)}.tar.gz` })}><code class="wrap">${view.source}</code></a> (${bytes(view.sourceSize)}; select to download)</dd>
  <dt>Signed entries</dt><dd><a href="/api/jobs/${view.id}/entries">${view.entries.length} entries as JSON</a></dd>
</dl>
${repeat(view.platforms, (p) => p.selector, (p) => platformSection(view, p, self))}
${crossTemplate(view)}
${specTemplate(view)}
<section aria-labelledby="entries-title"><h2 id="entries-title">Evidence</h2>
<details class="entries"><summary>The signed entries of this job (${view.entries.length})</summary><div class="entries-view"></div></details></section>
</article>`
}

/** @param {HTMLDetailsElement} details */
async function fillLog (details) {
  const hash = details.dataset.log ?? ''
  const size = Number(details.dataset.size)
  const box = find(details, '.log-view', HTMLElement)
  const cached = blobTexts.get(`log:${hash}`)
  let loaded = typeof cached === 'object' ? cached : undefined
  if (loaded === undefined) {
    render(html`<p class="muted">Loading the last ${bytes(Math.min(size, LOG_TAIL_BYTES))}…</p>`, box)
    try {
      loaded = await fetchLog(hash, size > LOG_TAIL_BYTES)
    } catch (err) {
      render(html`<p class="error">Could not load the log: ${messageOf(err)}</p>`, box)
      return
    }
    remember(`log:${hash}`, loaded)
  }
  renderLog(box, hash, loaded)
}

/**
 * @param {string} hash
 * @param {boolean} tailOnly
 * @returns {Promise<LoadedLog>}
 */
async function fetchLog (hash, tailOnly) {
  const { text, headers } = await getText(blobUrl(hash, tailOnly ? { tail: LOG_TAIL_BYTES } : {}))
  const offset = Number(headers.get('X-Blob-Offset') ?? 0)
  const size = Number(headers.get('X-Blob-Size') ?? text.length)
  // A tail starts mid-line: begin at the first whole line.
  const cut = offset > 0 ? text.indexOf('\n') + 1 : 0
  return { text: text.slice(cut), offset, size }
}

/**
 * @param {HTMLElement} box
 * @param {string} hash
 * @param {LoadedLog} loaded
 */
function renderLog (box, hash, loaded) {
  const download = html`<a href=${blobUrl(hash, { download: `log-${short(hash)}.txt` })}>download</a>`
  const note = loaded.offset > 0
    ? html`<p class="log-note">Showing the end of the log (last ${bytes(loaded.size - loaded.offset)} of ${bytes(loaded.size)}). <button type="button" data-action="full-log" data-log=${hash}>Show full log</button> ${download}</p>`
    : html`<p class="log-note">The whole log. ${download}</p>`
  render(html`${note}<pre class="log-text" tabindex="0">${loaded.text}</pre>`, box)
  const pre = find(box, 'pre', HTMLPreElement)
  if (loaded.offset > 0) pre.scrollTop = pre.scrollHeight
}

/** @param {HTMLDetailsElement} details */
async function fillReport (details) {
  const hash = details.dataset.report ?? ''
  const box = find(details, '.report-view', HTMLElement)
  const cached = blobTexts.get(`report:${hash}`)
  let text = typeof cached === 'string' ? cached : undefined
  if (text === undefined) {
    render(html`<p class="muted">Loading…</p>`, box)
    try {
      text = (await getText(blobUrl(hash))).text
    } catch (err) {
      render(html`<p class="error">Could not load the report: ${messageOf(err)}</p>`, box)
      return
    }
    remember(`report:${hash}`, text)
  }
  render(html`<pre class="log-text" tabindex="0">${text}</pre>`, box)
}

/**
 * @param {HTMLDetailsElement} details
 * @param {string} id
 */
async function fillEntries (details, id) {
  const box = find(details, '.entries-view', HTMLElement)
  render(html`<p class="muted">Loading…</p>`, box)
  try {
    const { entries } = /** @type {{ entries: Array<{ type: string, author: string, seq: number }> }} */ (await getJson(`/api/jobs/${id}/entries`))
    render(entries.map((e) => html`<h3 class="entry-title">${e.type} by ${keyTag(e.author)} (seq ${e.seq})</h3><pre class="entry">${JSON.stringify(e, null, 2)}</pre>`), box)
  } catch (err) {
    render(html`<p class="error">Could not load the entries: ${messageOf(err)}</p>`, box)
  }
}

/** The live log keeps at most this many characters per build in the page (the whole log comes with the result). */
const LIVE_CHARS = 256 * 1024
const FINAL = new Set(['verified', 'failed', 'mismatch', 'cancelled'])

/**
 * A running build's output as far as the page holds it.
 * @typedef {object} LiveText
 * @property {string} platform
 * @property {string} builder
 * @property {string} text the last LIVE_CHARS characters
 * @property {number} end the offset in the log just past `text`
 * @property {boolean} ended
 * @property {string} [note] why the run ended, when it says
 */

/**
 * One box per running build of a platform: an open log that shows its state.
 * @param {LiveText[]} texts
 * @param {string | undefined} self
 */
function liveTemplate (texts, self) {
  return repeat(texts, (t) => `${t.platform}/${t.builder}`, (t) => html`<details class="live-log" open><summary>Live log of ${keyTag(t.builder, self)} <span class="live-state">${t.ended ? `(${t.note ?? 'run ended'})` : '(running)'}</span></summary><pre class="log-text" tabindex="0" data-key="${t.platform}/${t.builder}">${t.text}</pre></details>`)
}

/**
 * Running builds' output as it grows (GET /api/jobs/:id/live): one box per
 * builder under its platform, rendered into the platform's `.live` panel
 * (which the page's template leaves alone, so the boxes survive its
 * re-renders), closed once the job is decided and nothing runs.
 * @param {string} id
 * @param {() => string | undefined} getSelf
 * @param {HTMLElement} main
 */
function liveLogs (id, getSelf, main) {
  /** @type {Map<string, LiveText>} */
  const texts = new Map()
  /** @type {EventSource | undefined} */
  let source
  /** @param {string} platform */
  const paint = (platform) => {
    const panel = main.querySelector(`.live[data-platform="${CSS.escape(platform)}"]`)
    if (!(panel instanceof HTMLElement)) return
    // A box scrolled to its end (or new) keeps following the output; one the reader scrolled up stays put.
    /** @type {Set<string | undefined>} */
    const stayed = new Set()
    for (const box of panel.querySelectorAll('pre[data-key]')) {
      if (box instanceof HTMLElement && box.scrollTop + box.clientHeight < box.scrollHeight - 4) stayed.add(box.dataset.key)
    }
    render(liveTemplate([...texts.values()].filter((t) => t.platform === platform), getSelf()), panel)
    for (const box of panel.querySelectorAll('pre[data-key]')) {
      if (box instanceof HTMLElement && !stayed.has(box.dataset.key)) box.scrollTop = box.scrollHeight
    }
  }
  const close = () => { source?.close() }
  return {
    open () {
      if (source !== undefined) return
      source = new EventSource(`/api/jobs/${id}/live`)
      source.addEventListener('log', (event) => {
        const data = /** @type {LiveLogEvent} */ (JSON.parse(event.data))
        const key = `${data.platform}/${data.builder}`
        const held = texts.get(key) ?? { platform: data.platform, builder: data.builder, text: '', end: 0, ended: false }
        const end = data.offset + data.text.length
        if (end > held.end) {
          held.text = (held.text + data.text.slice(Math.max(0, held.end - data.offset))).slice(-LIVE_CHARS)
          held.end = end
        }
        texts.set(key, held)
        paint(data.platform)
      })
      source.addEventListener('end', (event) => {
        const data = /** @type {LiveEndEvent} */ (JSON.parse(event.data))
        const held = texts.get(`${data.platform}/${data.builder}`)
        if (held === undefined) return
        held.ended = true
        held.note = data.note
        paint(data.platform)
      })
      source.addEventListener('done', close)
    },
    /** Paint again after the page's re-render (a platform's section may be new). */
    repaint () { for (const platform of new Set([...texts.values()].map((t) => t.platform))) paint(platform) },
    close
  }
}

/**
 * @param {HTMLElement} main
 * @param {string} id
 * @param {string | undefined} platform the section to scroll to
 * @param {PageContext} context
 * @returns {Page}
 */
export function mountJob (main, id, platform, context) {
  /** @type {JobView | undefined} */
  let view
  /** @type {string | undefined} */
  let self
  let stopped = false
  const live = liveLogs(id, () => self, main)
  /** @type {Promise<void> | undefined} */
  let fetching
  let again = false
  /**
   * Logs, reports and the entries list the user opened: kept open across live re-renders.
   * @type {Set<string>}
   */
  const opened = new Set()
  let firstRender = true
  let wantFocus = false

  render(html`<p class="muted" aria-live="polite">Loading the job…</p>`, main)

  /** Render the page; lit-html updates in place, so open logs and the scroll position stay. */
  function show () {
    if (view === undefined) return
    render(pageTemplate(view, self), main)
    live.repaint()
    const current = view
    if (!FINAL.has(current.verdict) || current.platforms.some((p) => p.claims.some((c) => !p.results.some((r) => r.builder === c.builder)))) live.open()
    for (const details of main.querySelectorAll('details.log, details.report, details.entries')) {
      if (!(details instanceof HTMLDetailsElement)) continue
      const key = details.dataset.log ?? details.dataset.report ?? 'entries'
      if (opened.has(key)) details.open = true
    }
    if (!firstRender) return
    firstRender = false
    // Open the failing build's log and any diagnosis at once: that is what people come for.
    for (const logs of main.querySelectorAll('.logs[data-open-first]')) {
      const first = logs instanceof HTMLElement ? logs.dataset.openFirst ?? '' : ''
      if (first === '') continue
      const details = logs.querySelector(`details.log[data-log="${CSS.escape(first)}"]`)
      if (details instanceof HTMLDetailsElement) details.open = true
    }
    for (const details of main.querySelectorAll('details.report')) if (details instanceof HTMLDetailsElement) details.open = true
    const target = platform !== undefined ? main.querySelector(`section.platform[data-selector="${CSS.escape(platform)}"]`) : null
    if (target !== null) target.scrollIntoView()
    if (wantFocus) {
      const heading = target?.querySelector('h2') ?? main.querySelector('h1')
      if (heading instanceof HTMLElement) heading.focus({ preventScroll: target !== null })
    }
  }

  async function load () {
    if (fetching !== undefined) { again = true; return }
    fetching = (async () => {
      try {
        const [fresh, health] = await Promise.all([getJson(`/api/jobs/${id}`), nodeHealth().catch(() => undefined)])
        if (stopped) return
        view = /** @type {JobView} */ (fresh)
        self = health?.author
        show()
      } catch (err) {
        if (stopped) return
        if (view === undefined) render(html`<h1 tabindex="-1">Job ${short(id)}</h1><p class="error">${messageOf(err)}</p><p><a href="#/">Back to the grid</a></p>`, main)
        else context.flash(`could not refresh the job: ${messageOf(err)}`)
      }
    })()
    await fetching
    fetching = undefined
    if (again && !stopped) { again = false; await load() }
  }

  /** @param {Event} event */
  const onToggle = (event) => {
    const details = event.target
    if (!(details instanceof HTMLDetailsElement)) return
    const key = details.dataset.log ?? details.dataset.report ?? (details.classList.contains('entries') ? 'entries' : undefined)
    if (key === undefined) return
    if (!details.open) { opened.delete(key); return }
    opened.add(key)
    if (details.classList.contains('log')) void fillLog(details)
    else if (details.classList.contains('report')) void fillReport(details)
    else void fillEntries(details, id)
  }

  /** @param {Event} event */
  const onClick = async (event) => {
    const button = event.target instanceof Element ? event.target.closest('button[data-action]') : null
    if (!(button instanceof HTMLButtonElement) || view === undefined) return
    const action = button.dataset.action
    if (action === 'full-log') {
      const hash = button.dataset.log ?? ''
      const box = button.closest('.log-view')
      if (!(box instanceof HTMLElement)) return
      button.disabled = true
      button.textContent = 'Loading…'
      try {
        const full = await fetchLog(hash, false)
        remember(`log:${hash}`, full)
        renderLog(box, hash, full)
      } catch (err) {
        button.disabled = false
        button.textContent = 'Show full log'
        context.flash(`could not load the full log: ${messageOf(err)}`)
      }
      return
    }
    if (action === 'cancel') {
      if (!window.confirm(`Cancel job ${view.name}? Builds in progress stop.`)) return
      button.disabled = true
      try {
        view = /** @type {JobView} */ (await postJson(`/api/jobs/${id}/cancel`, {}))
        show()
      } catch (err) {
        button.disabled = false
        context.reportError(err, 'Cancelling')
      }
      return
    }
    if (action === 'rerun') {
      button.disabled = true
      try {
        const fresh = /** @type {JobView} */ (await postJson(`/api/jobs/${id}/rerun`, {}))
        location.hash = `#/job/${fresh.id}`
      } catch (err) {
        button.disabled = false
        context.reportError(err, 'Re-running')
      }
    }
  }

  main.addEventListener('toggle', onToggle, true)
  main.addEventListener('click', onClick)
  void load()

  return {
    focus () {
      const heading = main.querySelector('h1')
      if (heading instanceof HTMLElement) heading.focus()
      else wantFocus = true
    },
    job (summary) { if (summary.id === id) void load() },
    resync () { void load() },
    unmount () {
      stopped = true
      live.close()
      main.removeEventListener('toggle', onToggle, true)
      main.removeEventListener('click', onClick)
    }
  }
}
