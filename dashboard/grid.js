// The grid: jobs (newest first) × platforms, one cell per job platform,
// coloured by verdict, with text and a symbol saying the same. Rows are built
// as one HTML string and parsed once; the table has no per-cell listeners.

import { esc, elapsedTag, isProblem, short, timeTag } from './format.js'

const PROBLEMS_KEY = 'buildhaus.onlyProblems'

/**
 * A job in the shape of GET /api/jobs?view=grid. Live events carry full
 * summaries (claims and results); the grid keeps only what it shows: per
 * platform, how many builders delivered and who builds it now.
 */
export function toGridJob (summary) {
  if (summary.platforms.every((p) => p.running !== undefined)) return summary
  return {
    ...summary,
    platforms: summary.platforms.map((p) => {
      if (p.running !== undefined) return p
      const reported = new Set(p.results.map((r) => r.builder))
      const delivered = new Set(p.results.filter((r) => r.status !== 'refused').map((r) => r.builder))
      const running = new Map()
      for (const c of p.claims) if (!reported.has(c.builder)) running.set(c.builder, Math.min(running.get(c.builder) ?? c.time, c.time))
      const { claims: _claims, results: _results, ...rest } = p
      return { ...rest, done: delivered.size, running: [...running].map(([builder, time]) => ({ builder, time })) }
    })
  }
}

/**
 * What one cell shows. Decided platforms show their verdict and how many
 * builders agree; open ones say whether someone builds them now (running,
 * since the earliest claim) or nobody does (queued or unmatched, since the
 * job was submitted, with the node's reason).
 */
export function cellState (job, platform) {
  const count = `${platform.agreeing}/${platform.replicas}`
  const verdict = platform.verdict
  if (verdict === 'verified' || verdict === 'failed' || verdict === 'mismatch') {
    return { kind: verdict, label: `${verdict} ${count}`, reason: platform.reason ?? '' }
  }
  if (job.cancelled) return { kind: 'cancelled', label: 'cancelled', reason: job.reason ?? 'cancelled by its submitter' }
  const running = platform.running
  const progress = `${platform.done}/${platform.replicas}`
  if (running.length > 0) {
    const since = Math.min(...running.map((c) => c.time))
    const who = `${running.length} builder${running.length > 1 ? 's' : ''} running (${running.map((c) => short(c.builder)).join(', ')})`
    return { kind: 'running', label: `running ${progress}`, since, reason: platform.reason !== undefined ? `${who}; ${platform.reason}` : who }
  }
  if (verdict === 'unmatched') return { kind: 'unmatched', label: `unmatched ${progress}`, since: job.time, reason: platform.reason ?? 'no live node can take it' }
  return { kind: 'queued', label: `queued ${progress}`, since: job.time, reason: platform.reason ?? 'queued: waiting for a builder to claim it' }
}

/** Whether the row deserves attention: a failure, a disagreement, or work nobody can take. */
export function rowIsProblem (job) {
  return isProblem(job.verdict) || job.crossPlatform === 'mismatch' || job.platforms.some((p) => isProblem(p.verdict))
}

/** The union of every job's platform selectors, sorted: the grid's columns. */
export function columnsOf (jobs) {
  const set = new Set()
  for (const job of jobs) for (const p of job.platforms) set.add(p.selector)
  return [...set].sort()
}

function jobVerdictCell (job) {
  const cross = job.crossPlatform === 'mismatch' ? ' <span class="cross" title="platform-independent artifacts differ across platforms">≠ across platforms</span>' : ''
  const title = job.reason !== undefined ? ` title="${esc(job.reason)}"` : ''
  // An open job says whether anyone builds it now: "pending" alone hides the queue.
  let kind = job.verdict
  if (kind === 'pending') kind = job.platforms.some((p) => p.verdict === 'pending' && p.running.length > 0) ? 'running' : 'queued'
  return `<td class="jv v-${esc(kind)}"${title}>${esc(kind)}${cross}</td>`
}

export function rowHtml (job, columns) {
  const bySelector = new Map(job.platforms.map((p) => [p.selector, p]))
  const problem = rowIsProblem(job)
  const id = esc(job.id)
  let cells = ''
  for (const selector of columns) {
    const platform = bySelector.get(selector)
    if (platform === undefined) {
      cells += '<td class="c none"><span class="sr">not built here</span></td>'
      continue
    }
    const state = cellState(job, platform)
    const clock = state.since !== undefined ? ` ${elapsedTag(state.since)}` : ''
    const title = state.reason !== '' ? ` title="${esc(state.reason)}"` : ''
    cells += `<td class="c v-${state.kind}"${title} data-platform="${esc(selector)}"><a href="#/job/${id}/${esc(encodeURIComponent(selector))}">${esc(state.label)}${clock}</a></td>`
  }
  return `<tr data-job="${id}" class="r-${esc(job.verdict)}${problem ? ' problem' : ''}">` +
    `<th scope="row" class="job"><a href="#/job/${id}">${esc(job.name)}</a> <code class="id" title="${id}">${esc(short(job.id))}</code></th>` +
    `<td class="when">${timeTag(job.time)}</td>${jobVerdictCell(job)}${cells}</tr>`
}

/** Counts for the line above the grid: jobs by verdict, and platform slots running or queued. */
export function summaryOf (jobs) {
  const verdicts = {}
  let running = 0
  let queued = 0
  let problems = 0
  for (const job of jobs) {
    verdicts[job.verdict] = (verdicts[job.verdict] ?? 0) + 1
    if (rowIsProblem(job)) problems++
    if (job.cancelled) continue
    for (const p of job.platforms) {
      if (p.verdict !== 'pending') continue
      if (p.running.length > 0) running++
      else queued++
    }
  }
  return { total: jobs.length, verdicts, running, queued, problems }
}

/** Job verdicts counted above the grid; open jobs are counted by their builds instead. */
const SUMMARY_ORDER = ['failed', 'mismatch', 'unmatched', 'cancelled', 'verified']

function summaryHtml (s) {
  const parts = [`<strong>${s.total}</strong> job${s.total === 1 ? '' : 's'}`]
  for (const verdict of SUMMARY_ORDER) {
    const n = s.verdicts[verdict] ?? 0
    if (n > 0) parts.push(`<span class="count v-${verdict}">${n} ${verdict}</span>`)
  }
  parts.push(`builds: <span class="count v-running">${s.running} running</span>`)
  parts.push(`<span class="count v-queued">${s.queued} queued</span>`)
  return parts.join(' · ')
}

export function problemTitle (s) {
  if (s.total === 0) return 'buildhaus'
  return s.problems > 0 ? `buildhaus: ${s.problems} problem${s.problems > 1 ? 's' : ''}` : 'buildhaus: no problems'
}

/**
 * Mount the grid in `main`. `store` holds the job summaries (newest first)
 * and stays current through the live events; the grid re-renders one row
 * when one job changes, and everything only when the columns change.
 */
export function mountGrid (main, store) {
  let onlyProblems = false
  try { onlyProblems = localStorage.getItem(PROBLEMS_KEY) === '1' } catch {}
  main.innerHTML = `<section class="grid-page" aria-labelledby="grid-title">
  <div class="toolbar">
    <h1 id="grid-title" tabindex="-1">Jobs</h1>
    <p class="summary" id="grid-summary"></p>
    <div class="filters">
      <label class="check"><input type="checkbox" id="only-problems"${onlyProblems ? ' checked' : ''}> Only problems</label>
      <label for="grid-search">Name</label>
      <input id="grid-search" type="search" placeholder="filter by name" autocomplete="off">
    </div>
  </div>
  <div class="grid-wrap">
    <table class="grid${onlyProblems ? ' only-problems' : ''}" id="grid">
      <caption class="sr">Jobs, newest first, by platform; each cell gives the platform's verdict and how many builders agree out of how many wanted.</caption>
      <thead></thead>
      <tbody></tbody>
    </table>
  </div>
  <p class="muted" id="grid-empty" hidden>No jobs yet. <a href="#/submit">Submit one</a>, or run <code>buildhaus-node submit DIR</code>.</p>
</section>`
  const table = main.querySelector('#grid')
  const thead = table.tHead
  const tbody = table.tBodies[0]
  const summary = main.querySelector('#grid-summary')
  const empty = main.querySelector('#grid-empty')
  const search = main.querySelector('#grid-search')
  let columns = []
  let rows = new Map()
  let needle = ''
  const pending = new Map()
  let flushTimer

  const matches = (job) => needle === '' || job.name.toLowerCase().includes(needle)

  function renderSummary () {
    const s = summaryOf(store.list())
    summary.innerHTML = summaryHtml(s)
    document.title = problemTitle(s)
    empty.hidden = s.total > 0 || !store.loaded
  }

  /** Rows shown in the first frame; the rest follow in the next task, so the top of the grid appears at once. */
  const FIRST_ROWS = 60
  let generation = 0
  let complete = false

  function renderAll () {
    // A copy: live events may reorder the store before the rest of the rows is built.
    const jobs = store.list().slice()
    const mine = ++generation
    columns = columnsOf(jobs)
    thead.innerHTML = `<tr><th scope="col" class="job">Job</th><th scope="col" class="when">Submitted</th><th scope="col" class="jv">Verdict</th>${columns.map((c) => `<th scope="col" class="c">${esc(c)}</th>`).join('')}</tr>`
    let html = ''
    for (const job of jobs.slice(0, FIRST_ROWS)) html += rowHtml(job, columns)
    tbody.innerHTML = html
    complete = jobs.length <= FIRST_ROWS
    renderSummary()
    indexRows()
    // Marks for bench/dashboard.ts and anyone profiling: rows built, then the frame that shows them
    // (a task queued from requestAnimationFrame runs once that frame is out).
    if (jobs.length > 0) {
      mark('buildhaus:grid-rendered')
      const whole = complete
      requestAnimationFrame(() => setTimeout(() => {
        mark('buildhaus:grid-painted')
        if (whole) mark('buildhaus:grid-complete-painted')
      }, 0))
      if (whole) mark('buildhaus:grid-complete')
    }
    if (!complete) {
      requestAnimationFrame(() => setTimeout(() => {
        if (mine !== generation) return
        let rest = ''
        for (const job of jobs.slice(FIRST_ROWS)) rest += rowHtml(job, columns)
        tbody.insertAdjacentHTML('beforeend', rest)
        complete = true
        indexRows()
        mark('buildhaus:grid-complete')
        requestAnimationFrame(() => setTimeout(() => mark('buildhaus:grid-complete-painted'), 0))
        if (pending.size > 0) flush()
      }, 0))
    }
  }

  function mark (name) {
    if (performance.getEntriesByName(name).length === 0) performance.mark(name)
  }

  function indexRows () {
    rows = new Map()
    for (const tr of tbody.rows) rows.set(tr.dataset.job, tr)
    if (needle !== '') applySearch()
  }

  function applySearch () {
    for (const job of store.list()) {
      const tr = rows.get(job.id)
      if (tr !== undefined) tr.hidden = !matches(job)
    }
  }

  function flush () {
    flushTimer = undefined
    // Changes wait for the rest of the first render, which may already show them.
    if (!complete) return
    const changed = [...pending.values()]
    pending.clear()
    if (changed.some((job) => job.platforms.some((p) => !columns.includes(p.selector)))) { renderAll(); return }
    const template = document.createElement('template')
    for (const job of changed) {
      template.innerHTML = `<table><tbody>${rowHtml(job, columns)}</tbody></table>`
      const fresh = template.content.querySelector('tr')
      fresh.hidden = !matches(job)
      const old = rows.get(job.id)
      if (old !== undefined) {
        old.replaceWith(fresh)
      } else {
        // A job we had not seen: the newest go on top.
        const index = store.indexOf(job.id)
        const after = index > 0 ? rows.get(store.list()[index - 1]?.id) : undefined
        if (after !== undefined) after.after(fresh)
        else tbody.prepend(fresh)
      }
      rows.set(job.id, fresh)
    }
    renderSummary()
  }

  main.querySelector('#only-problems').addEventListener('change', (event) => {
    onlyProblems = event.target.checked
    table.classList.toggle('only-problems', onlyProblems)
    try { localStorage.setItem(PROBLEMS_KEY, onlyProblems ? '1' : '0') } catch {}
  })
  search.addEventListener('input', () => {
    needle = search.value.trim().toLowerCase()
    applySearch()
  })

  if (store.loaded) renderAll()
  return {
    focus: () => main.querySelector('#grid-title').focus(),
    /** The whole list was (re)loaded. */
    reload: renderAll,
    /** One job changed or arrived. */
    job (summary) {
      pending.set(summary.id, summary)
      flushTimer ??= setTimeout(flush, 30)
    },
    unmount () { clearTimeout(flushTimer) }
  }
}
