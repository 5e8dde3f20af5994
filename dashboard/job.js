// A job's page: its spec and source, each platform's builders side by side
// (status, step timings, artifact hashes with differences marked), logs
// (tail first), diagnosis reports, the signed entries, cancel and re-run.

import { getJson, getText, nodeHealth, postJson } from './api.js'
import { baseName, blobUrl, bytes, duration, elapsedTag, esc, GLYPHS, keyTag, short, timeTag } from './format.js'
import { cellState, toGridJob } from './grid.js'

/** The log viewer first fetches this many bytes from the end: where a build failed. */
export const LOG_TAIL_BYTES = 65536

/** Blobs are content-addressed, so what was fetched once stays true: keep logs and reports across re-renders. */
const blobTexts = new Map()
const BLOB_CACHE_ENTRIES = 64

function remember (key, value) {
  blobTexts.delete(key)
  blobTexts.set(key, value)
  if (blobTexts.size > BLOB_CACHE_ENTRIES) blobTexts.delete(blobTexts.keys().next().value)
}

function badge (kind, text = kind) {
  return `<span class="badge v-${esc(kind)}"><span aria-hidden="true">${GLYPHS[kind] ?? ''}</span> ${esc(text)}</span>`
}

function yesNo (value) {
  return value ? 'yes' : 'no'
}

function statusTag (status) {
  const kind = status === 'pass' ? 'verified' : status === 'refused' ? 'cancelled' : 'failed'
  return `<span class="status v-${kind}">${esc(status)}</span>`
}

function stepCell (step) {
  if (step === undefined) return '<td class="na">did not run</td>'
  const bad = step.exit !== 0
  const outcome = step.exit !== null ? `exit ${step.exit}` : step.signal !== undefined ? `killed by ${esc(step.signal)}` : 'did not finish'
  return `<td class="${bad ? 'bad' : 'ok'}">${outcome} · ${duration(step.ms)}</td>`
}

/** Results compared side by side: each builder's latest (refusals built nothing). */
function comparedResults (platform) {
  return platform.results.filter((r) => r.latest && r.status !== 'refused')
}

function builderHead (result, self) {
  return `<th scope="col">${keyTag(result.builder, self)}<br>${statusTag(result.status)}</th>`
}

function stepsTable (view, results, self) {
  const names = [...new Set([...view.spec.steps.map((s) => s.name), ...results.flatMap((r) => r.steps.map((s) => s.name))])]
  const rows = names.map((name) => `<tr><th scope="row">${esc(name)}</th>${results.map((r) => stepCell(r.steps.find((s) => s.name === name))).join('')}</tr>`).join('')
  const total = `<tr class="total"><th scope="row">whole run</th>${results.map((r) => `<td>${duration(r.end - r.start)}</td>`).join('')}</tr>`
  return `<table class="side steps"><caption>Step timings</caption><thead><tr><th scope="col">Step</th>${results.map((r) => builderHead(r, self)).join('')}</tr></thead><tbody>${rows}${total}</tbody></table>`
}

function artifactsTable (view, platform, results, self) {
  const paths = [...new Set(results.flatMap((r) => r.artifacts.map((a) => a.path)))].sort()
  if (paths.length === 0) return '<p class="muted">No artifacts.</p>'
  const listed = new Set(platform.mismatch?.files ?? [])
  const rows = paths.map((path) => {
    const found = results.map((r) => r.artifacts.find((a) => a.path === path))
    const hashes = new Set(found.map((a) => a?.sha256 ?? 'missing'))
    const differs = hashes.size > 1 || listed.has(path)
    // Each hash gets a number, so equal and different hashes read as such without colour.
    const numbering = new Map([...hashes].map((h, i) => [h, i + 1]))
    const cells = found.map((a) => {
      if (a === undefined) return '<td class="missing">missing</td>'
      const mark = differs ? ` <span class="variant">#${numbering.get(a.sha256)}</span>` : ''
      return `<td class="hash${differs ? ' diff' : ''}"><a href="${esc(blobUrl(a.sha256, { download: baseName(a.path) }))}" download="${esc(baseName(a.path))}" title="download ${esc(a.path)} (sha256 ${esc(a.sha256)})"><code>${esc(a.sha256)}</code></a>${mark} <span class="size">${bytes(a.size)}</span></td>`
    }).join('')
    return `<tr class="${differs ? 'differs' : 'same'}"><th scope="row"><code>${esc(path)}</code></th><td class="agree">${differs ? `<strong>${GLYPHS.mismatch} differs</strong>` : `${GLYPHS.agree} same`}</td>${cells}</tr>`
  }).join('')
  return `<table class="side artifacts"><caption>Artifacts (sha256; select one to download)</caption><thead><tr><th scope="col">Path</th><th scope="col">Across builders</th>${results.map((r) => builderHead(r, self)).join('')}</tr></thead><tbody>${rows}</tbody></table>`
}

/**
 * The builder's fingerprint: the system on one line, its tools on demand;
 * for a build in an environment, its name and manifest (a blob to open), and
 * the versions of the packages the result records.
 */
function envHtml (env, environment) {
  const tools = Object.entries(env.tools ?? {}).map(([k, v]) => `<li><code>${esc(k)}</code> ${esc(v)}</li>`).join('')
  const warning = env.warning !== undefined ? `<br><strong>warning:</strong> ${esc(env.warning)}` : ''
  const toolList = tools !== '' ? `<details><summary>tools</summary><ul class="tools">${tools}</ul></details>` : ''
  let inside = ''
  if (environment !== undefined) {
    const packages = Object.entries(environment.packages ?? {}).map(([k, v]) => `<li><code>${esc(k)}</code> ${esc(v)}</li>`).join('')
    inside = `<br>environment <strong>${esc(environment.name)}</strong> <a href="${esc(blobUrl(environment.manifest))}" title="its manifest: every package and version"><code>${esc(environment.manifest.slice(0, 12))}</code></a>` +
      (packages !== '' ? `<details><summary>packages</summary><ul class="tools">${packages}</ul></details>` : '')
  }
  return `${esc(`${env.os} ${env.arch}, kernel ${env.kernel}, sandbox ${env.sandbox}`)}${inside}${warning}${toolList}`
}

function resultsTable (platform, self) {
  if (platform.results.length === 0) return ''
  const rows = platform.results.map((r) => {
    const vote = r.counted ? (r.agrees === false ? 'counted, disagrees' : r.agrees === true ? 'counted, agrees' : 'counted') : !r.latest ? 'superseded by a later result' : !r.trusted ? 'not trusted by this node' : 'not counted'
    return `<tr${r.agrees === false ? ' class="differs"' : ''}><th scope="row">${keyTag(r.builder, self)}</th><td>${statusTag(r.status)}${r.reason !== undefined ? ` <span class="reason">${esc(r.reason)}</span>` : ''}</td><td>${esc(vote)}</td><td>${timeTag(r.start)}</td><td>${duration(r.end - r.start)}</td><td class="env">${envHtml(r.env, r.environment)}</td></tr>`
  }).join('')
  return `<table class="results"><caption>Results</caption><thead><tr><th scope="col">Builder</th><th scope="col">Status</th><th scope="col">Vote</th><th scope="col">Started</th><th scope="col">Took</th><th scope="col">Environment</th></tr></thead><tbody>${rows}</tbody></table>`
}

function claimsList (platform, self) {
  const done = new Set(platform.results.map((r) => r.builder))
  const open = platform.claims.filter((c) => !done.has(c.builder))
  if (open.length === 0) return ''
  const now = Date.now()
  // A lapsed lease still holds while the claimant's heartbeats list the build: say only what is certain.
  const items = open.map((c) => `<li>${keyTag(c.builder, self)} claimed it ${elapsedTag(c.time)} ago${c.lease > now ? `, lease until ${timeTag(c.lease)}` : ''}</li>`).join('')
  return `<div class="claims"><h4>Building now</h4><ul>${items}</ul></div>`
}

function logViewer (result, self) {
  if (result.log === null) return ''
  return `<details class="log" data-log="${esc(result.log)}" data-size="${result.logSize}" data-builder="${esc(result.builder)}">` +
    `<summary>Log of ${keyTag(result.builder, self)} (${statusTag(result.status)}, ${bytes(result.logSize)})</summary>` +
    '<div class="log-view"></div></details>'
}

function diagnosesHtml (view, platform, self) {
  const mine = view.diagnoses.filter((d) => d.platform === platform.selector)
  if (mine.length === 0) {
    return platform.verdict === 'mismatch' ? '<p class="muted">A builder of this platform will publish a diagnosis report comparing the differing files.</p>' : ''
  }
  return mine.map((d) => `<div class="diagnosis"><h4>${d.versus !== undefined ? `Cross-platform diagnosis (vs ${esc(d.versus)})` : 'Diagnosis'} by ${keyTag(d.author, self)} ${timeTag(d.time)}</h4>` +
    `<p>${esc(d.summary)}</p><p>Files: ${d.files.map((f) => `<code>${esc(f)}</code>`).join(', ') || 'none'}; builders: ${d.builders.map((b) => keyTag(b, self)).join(', ')}.</p>` +
    `<details class="report" data-report="${esc(d.report)}"><summary>Diagnosis report</summary><div class="report-view"></div></details>` +
    ` <a href="${esc(blobUrl(d.report, { download: `diagnosis-${short(view.id)}.txt` }))}">download the report</a></div>`).join('')
}

function platformSection (view, platform, self) {
  const state = cellState(view, toGridJob({ platforms: [platform] }).platforms[0])
  const results = comparedResults(platform)
  const clock = state.since === undefined ? '' : state.kind === 'running' ? ` Building for ${elapsedTag(state.since)}.` : ` Waiting for ${elapsedTag(state.since)}.`
  const failing = platform.results.find((r) => r.latest && r.status !== 'pass' && r.status !== 'refused' && r.log !== null)
  const side = results.length > 0 ? `${stepsTable(view, results, self)}${artifactsTable(view, platform, results, self)}` : ''
  const mismatch = platform.mismatch !== undefined
    ? `<div class="mismatch"><h4>Disagreement</h4><p>${platform.mismatch.statusDiffers ? 'The builders disagree on the status. ' : ''}${platform.mismatch.files.length > 0 ? `Differing files: ${platform.mismatch.files.map((f) => `<code>${esc(f)}</code>`).join(', ')}.` : ''}</p><ul>${platform.mismatch.groups.map((g) => `<li>${g.builders.map((b) => keyTag(b, self)).join(', ')}: ${esc(g.status)}</li>`).join('')}</ul></div>`
    : ''
  return `<section class="platform" id="platform-${esc(platform.selector)}" data-selector="${esc(platform.selector)}" aria-labelledby="h-${esc(platform.selector)}">
  <h2 id="h-${esc(platform.selector)}" tabindex="-1">${esc(platform.selector)} ${badge(state.kind, state.label)}</h2>
  <p class="reason">${esc(state.reason)}.${clock} Wants ${platform.replicas} builder${platform.replicas > 1 ? 's' : ''}, ${platform.quorum} agreeing to decide.</p>
  ${claimsList(platform, self)}
  <div class="live" data-platform="${esc(platform.selector)}"></div>
  ${resultsTable(platform, self)}
  ${side}
  ${mismatch}
  ${diagnosesHtml(view, platform, self)}
  <div class="logs" data-open-first="${failing !== undefined ? esc(failing.log) : ''}">${platform.results.map((r) => logViewer(r, self)).join('')}</div>
</section>`
}

function specHtml (view) {
  const spec = view.spec
  const limits = Object.entries(spec.limits ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'the builders\' defaults'
  const steps = spec.steps.map((s) => `<li><strong>${esc(s.name)}</strong><pre><code>${esc(s.run)}</code></pre></li>`).join('')
  const globs = (list) => list.length > 0 ? list.map((g) => `<code>${esc(g)}</code>`).join(', ') : 'none'
  return `<section class="spec" aria-labelledby="spec-title"><h2 id="spec-title">Spec</h2>
<dl class="facts">
  <dt>Platforms</dt><dd>${spec.platforms.map((p) => `<code>${esc(p.selector)}</code> × ${p.replicas}`).join(', ')}</dd>
  <dt>Timeout</dt><dd>${spec.timeout} s</dd>
  <dt>Network</dt><dd>${yesNo(spec.network)}</dd>
  <dt>Root</dt><dd>${yesNo(spec.root)}</dd>
  <dt>Limits</dt><dd>${esc(limits)}</dd>
  <dt>Artifacts</dt><dd>${globs(spec.artifacts)}</dd>
  <dt>Platform-independent</dt><dd>${globs(spec.independent)}</dd>
</dl>
<h3>Steps</h3><ol class="steps-list">${steps}</ol></section>`
}

function crossHtml (view) {
  const cross = view.crossPlatform
  if (cross.verdict === 'none') return ''
  const selectors = [...new Set(cross.files.flatMap((f) => Object.keys(f.hashes)))].sort()
  const rows = cross.files.map((f) => `<tr class="${f.agree ? 'same' : 'differs'}"><th scope="row"><code>${esc(f.path)}</code></th><td>${f.agree ? `${GLYPHS.agree} same` : `<strong>${GLYPHS.mismatch} differs</strong>`}</td>${selectors.map((s) => `<td class="hash${f.agree ? '' : ' diff'}">${f.hashes[s] !== undefined ? `<code>${esc(f.hashes[s])}</code>` : '—'}</td>`).join('')}</tr>`).join('')
  return `<section class="cross" aria-labelledby="cross-title"><h2 id="cross-title">Across platforms ${badge(cross.verdict === 'agree' ? 'verified' : cross.verdict, cross.verdict)}</h2>
${cross.reason !== undefined ? `<p class="reason">${esc(cross.reason)}</p>` : ''}
${cross.files.length > 0 ? `<table class="side"><caption>Platform-independent artifacts</caption><thead><tr><th scope="col">Path</th><th scope="col">Across platforms</th>${selectors.map((s) => `<th scope="col">${esc(s)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>` : ''}</section>`
}

function actionsHtml (view, self) {
  const open = !view.cancelled && view.platforms.some((p) => p.verdict === 'pending' || p.verdict === 'unmatched')
  const cancel = open && self === view.submitter ? '<button type="button" data-action="cancel" class="danger">Cancel job</button>' : ''
  const why = open && self !== view.submitter ? '<span class="hint">Only the node that submitted it can cancel it.</span>' : ''
  return `<div class="actions">${cancel}<button type="button" data-action="rerun">Re-run</button>${why}</div>`
}

/** The job's verdict, an open one said as running (someone builds it) or queued. */
function jobKind (view) {
  if (view.verdict !== 'pending') return view.verdict
  const building = view.platforms.some((p) => {
    const reported = new Set(p.results.map((r) => r.builder))
    return p.verdict === 'pending' && p.claims.some((c) => !reported.has(c.builder))
  })
  return building ? 'running' : 'queued'
}

function pageHtml (view, self) {
  const cancelled = view.cancelled ? `<p class="reason">Cancelled by its submitter${view.cancelReason !== undefined ? `: ${esc(view.cancelReason)}` : ''}.</p>` : ''
  return `<article class="job-page" data-job="${esc(view.id)}">
<p class="crumbs"><a href="#/">Grid</a> › job</p>
<h1 id="job-title" tabindex="-1">${esc(view.name)} ${badge(jobKind(view))}</h1>
${view.reason !== undefined ? `<p class="reason">${esc(view.reason)}</p>` : ''}${cancelled}
${actionsHtml(view, self)}
<dl class="facts">
  <dt>Job</dt><dd><code class="wrap">${esc(view.id)}</code></dd>
  <dt>Submitter</dt><dd>${keyTag(view.submitter, self)}</dd>
  <dt>Submitted</dt><dd>${timeTag(view.time)}</dd>
  <dt>Source</dt><dd><a href="${esc(blobUrl(view.source, { download: `${view.name}-${short(view.source)}.tar.gz` }))}"><code class="wrap">${esc(view.source)}</code></a> (${bytes(view.sourceSize)}; select to download)</dd>
  <dt>Signed entries</dt><dd><a href="/api/jobs/${esc(view.id)}/entries">${view.entries.length} entries as JSON</a></dd>
</dl>
${view.platforms.map((p) => platformSection(view, p, self)).join('')}
${crossHtml(view)}
${specHtml(view)}
<section aria-labelledby="entries-title"><h2 id="entries-title">Evidence</h2>
<details class="entries"><summary>The signed entries of this job (${view.entries.length})</summary><div class="entries-view"></div></details></section>
</article>`
}

async function fillLog (details) {
  const hash = details.dataset.log
  const size = Number(details.dataset.size)
  const box = details.querySelector('.log-view')
  let loaded = blobTexts.get(`log:${hash}`)
  if (loaded === undefined) {
    box.innerHTML = `<p class="muted">Loading the last ${bytes(Math.min(size, LOG_TAIL_BYTES))}…</p>`
    try {
      loaded = await fetchLog(hash, size > LOG_TAIL_BYTES)
    } catch (err) {
      box.innerHTML = `<p class="error">Could not load the log: ${esc(err.message)}</p>`
      return
    }
    remember(`log:${hash}`, loaded)
  }
  renderLog(box, hash, loaded)
}

async function fetchLog (hash, tailOnly) {
  const { text, headers } = await getText(blobUrl(hash, tailOnly ? { tail: LOG_TAIL_BYTES } : {}))
  const offset = Number(headers.get('X-Blob-Offset') ?? 0)
  const size = Number(headers.get('X-Blob-Size') ?? text.length)
  // A tail starts mid-line: begin at the first whole line.
  const cut = offset > 0 ? text.indexOf('\n') + 1 : 0
  return { text: text.slice(cut), offset, size }
}

function renderLog (box, hash, loaded) {
  const note = loaded.offset > 0
    ? `<p class="log-note">Showing the end of the log (last ${bytes(loaded.size - loaded.offset)} of ${bytes(loaded.size)}). <button type="button" data-action="full-log" data-log="${esc(hash)}">Show full log</button> <a href="${esc(blobUrl(hash, { download: `log-${short(hash)}.txt` }))}">download</a></p>`
    : `<p class="log-note">The whole log. <a href="${esc(blobUrl(hash, { download: `log-${short(hash)}.txt` }))}">download</a></p>`
  box.innerHTML = `${note}<pre class="log-text" tabindex="0">${esc(loaded.text)}</pre>`
  const pre = box.querySelector('pre')
  if (loaded.offset > 0) pre.scrollTop = pre.scrollHeight
}

async function fillReport (details) {
  const hash = details.dataset.report
  const box = details.querySelector('.report-view')
  let text = blobTexts.get(`report:${hash}`)
  if (text === undefined) {
    box.innerHTML = '<p class="muted">Loading…</p>'
    try {
      text = (await getText(blobUrl(hash))).text
    } catch (err) {
      box.innerHTML = `<p class="error">Could not load the report: ${esc(err.message)}</p>`
      return
    }
    remember(`report:${hash}`, text)
  }
  box.innerHTML = `<pre class="log-text" tabindex="0">${esc(text)}</pre>`
}

async function fillEntries (details, id) {
  const box = details.querySelector('.entries-view')
  box.innerHTML = '<p class="muted">Loading…</p>'
  try {
    const { entries } = await getJson(`/api/jobs/${id}/entries`)
    box.innerHTML = entries.map((e) => `<h3 class="entry-title">${esc(e.type)} by ${keyTag(e.author)} (seq ${e.seq})</h3><pre class="entry">${esc(JSON.stringify(e, null, 2))}</pre>`).join('')
  } catch (err) {
    box.innerHTML = `<p class="error">Could not load the entries: ${esc(err.message)}</p>`
  }
}

/** The live log keeps at most this many characters per build in the page (the whole log comes with the result). */
const LIVE_CHARS = 256 * 1024
const FINAL = new Set(['verified', 'failed', 'mismatch', 'cancelled'])

/**
 * Running builds' output as it grows (GET /api/jobs/:id/live): one box per
 * builder under its platform, kept across re-renders, closed once the job
 * is decided and nothing runs.
 */
function liveLogs (id, getSelf, getMain) {
  const texts = new Map()
  let source
  const paint = (key) => {
    const main = getMain()
    const { platform, builder, text, ended, note } = texts.get(key)
    const panel = main.querySelector(`.live[data-platform="${CSS.escape(platform)}"]`)
    if (panel === null) return
    let box = panel.querySelector(`pre[data-key="${CSS.escape(key)}"]`)
    if (box === null) {
      panel.insertAdjacentHTML('beforeend', `<details class="live-log" open><summary>Live log of ${keyTag(builder, getSelf())} <span class="live-state"></span></summary><pre class="log-text" tabindex="0" data-key="${esc(key)}"></pre></details>`)
      box = panel.querySelector(`pre[data-key="${CSS.escape(key)}"]`)
    }
    const follow = box.scrollTop + box.clientHeight >= box.scrollHeight - 4
    box.textContent = text
    box.parentElement.querySelector('.live-state').textContent = ended ? `(${note ?? 'run ended'})` : '(running)'
    if (follow) box.scrollTop = box.scrollHeight
  }
  return {
    open () {
      if (source !== undefined) return
      source = new EventSource(`/api/jobs/${id}/live`)
      source.addEventListener('log', (event) => {
        const data = JSON.parse(event.data)
        const key = `${data.platform}/${data.builder}`
        const held = texts.get(key) ?? { platform: data.platform, builder: data.builder, text: '', end: 0, ended: false }
        const end = data.offset + data.text.length
        if (end > held.end) {
          held.text = (held.text + data.text.slice(Math.max(0, held.end - data.offset))).slice(-LIVE_CHARS)
          held.end = end
        }
        texts.set(key, held)
        paint(key)
      })
      source.addEventListener('end', (event) => {
        const data = JSON.parse(event.data)
        const key = `${data.platform}/${data.builder}`
        const held = texts.get(key)
        if (held === undefined) return
        held.ended = true
        held.note = data.note
        paint(key)
      })
      source.addEventListener('done', () => { this.close() })
    },
    repaint () { for (const key of texts.keys()) paint(key) },
    close () { source?.close() }
  }
}

export function mountJob (main, id, platform, context) {
  let view
  let self
  let stopped = false
  const live = liveLogs(id, () => self, () => main)
  let fetching
  let again = false
  /** Logs, reports and the entries list the user opened: kept open across live re-renders. */
  const opened = new Set()
  let firstRender = true
  let wantFocus = false

  main.innerHTML = '<p class="muted" aria-live="polite">Loading the job…</p>'

  function render () {
    const scroll = window.scrollY
    main.innerHTML = pageHtml(view, self)
    for (const details of main.querySelectorAll('details.log, details.report, details.entries')) {
      const key = details.dataset.log ?? details.dataset.report ?? 'entries'
      if (opened.has(key)) details.open = true
    }
    if (firstRender) {
      firstRender = false
      // Open the failing build's log and any diagnosis at once: that is what people come for.
      for (const logs of main.querySelectorAll('.logs[data-open-first]')) {
        const first = logs.dataset.openFirst
        if (first === '') continue
        const details = logs.querySelector(`details.log[data-log="${first}"]`)
        if (details !== null) details.open = true
      }
      for (const details of main.querySelectorAll('details.report')) details.open = true
      const target = platform !== undefined ? main.querySelector(`section.platform[data-selector="${CSS.escape(platform)}"]`) : null
      if (target !== null) target.scrollIntoView()
      if (wantFocus) (target?.querySelector('h2') ?? main.querySelector('h1')).focus({ preventScroll: target !== null })
    } else {
      window.scrollTo(0, scroll)
    }
    live.repaint()
    if (!FINAL.has(view.verdict) || view.platforms.some((p) => p.claims.some((c) => !p.results.some((r) => r.builder === c.builder)))) live.open()
  }

  async function load () {
    if (fetching !== undefined) { again = true; return }
    fetching = (async () => {
      try {
        const [fresh, health] = await Promise.all([getJson(`/api/jobs/${id}`), nodeHealth().catch(() => undefined)])
        if (stopped) return
        view = fresh
        self = health?.author
        render()
      } catch (err) {
        if (stopped) return
        if (view === undefined) main.innerHTML = `<h1 tabindex="-1">Job ${esc(short(id))}</h1><p class="error">${esc(err.message)}</p><p><a href="#/">Back to the grid</a></p>`
        else context.flash(`could not refresh the job: ${err.message}`)
      }
    })()
    await fetching
    fetching = undefined
    if (again && !stopped) { again = false; await load() }
  }

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

  const onClick = async (event) => {
    const button = event.target.closest('button[data-action]')
    if (button === null || view === undefined) return
    const action = button.dataset.action
    if (action === 'full-log') {
      const hash = button.dataset.log
      const box = button.closest('.log-view')
      button.disabled = true
      button.textContent = 'Loading…'
      try {
        const full = await fetchLog(hash, false)
        remember(`log:${hash}`, full)
        renderLog(box, hash, full)
      } catch (err) {
        button.disabled = false
        button.textContent = 'Show full log'
        context.flash(`could not load the full log: ${err.message}`)
      }
      return
    }
    if (action === 'cancel') {
      if (!window.confirm(`Cancel job ${view.name}? Builds in progress stop.`)) return
      button.disabled = true
      try {
        view = await postJson(`/api/jobs/${id}/cancel`, {})
        render()
      } catch (err) {
        button.disabled = false
        context.reportError(err, 'Cancelling')
      }
      return
    }
    if (action === 'rerun') {
      button.disabled = true
      try {
        const fresh = await postJson(`/api/jobs/${id}/rerun`, {})
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
      if (heading !== null) heading.focus()
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
