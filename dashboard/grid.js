// @ts-check
// The grid: jobs (newest first) × platforms, one cell per job platform,
// coloured by verdict, with text and a symbol saying the same. Rows are
// lit-html templates keyed by job id: a live event re-renders the list and
// lit-html touches only what changed; the table has no per-cell listeners.

import { html, nothing, render } from 'lit-html'
import { repeat } from 'lit-html/directives/repeat.js'
import { elapsedTag, find, isProblem, short, timeTag } from './format.js'

/** @typedef {import('./types.js').GridJob} GridJob */
/** @typedef {import('./types.js').JobSummary} JobSummary */
/** @typedef {GridJob['platforms'][number]} GridPlatform */
/** @typedef {import('../src/jobs/view.js').PlatformHeadline} PlatformHeadline */
/**
 * A platform with who claimed it and who delivered (a JobSummary's or a JobView's).
 * @typedef {PlatformHeadline & { claims: Array<{ builder: string, time: number }>, results: Array<{ builder: string, status: string }> }} ReportedPlatform
 */
/** @typedef {{ kind: string, label: string, reason: string, since?: number }} CellState */
/** @typedef {{ readonly loaded: boolean, list (): GridJob[] }} GridStore */

const PROBLEMS_KEY = 'buildhaus.onlyProblems'

/**
 * A platform as the grid shows it: how many builders delivered, and who
 * builds it now (claimed, no result yet; since their first claim).
 * @param {ReportedPlatform} p
 * @returns {GridPlatform}
 */
export function gridPlatform (p) {
  const reported = new Set(p.results.map((r) => r.builder))
  const delivered = new Set(p.results.filter((r) => r.status !== 'refused').map((r) => r.builder))
  /** @type {Map<string, number>} */
  const running = new Map()
  for (const c of p.claims) if (!reported.has(c.builder)) running.set(c.builder, Math.min(running.get(c.builder) ?? c.time, c.time))
  const { claims: _claims, results: _results, ...rest } = p
  return { ...rest, done: delivered.size, running: [...running].map(([builder, time]) => ({ builder, time })) }
}

/**
 * A job in the shape of GET /api/jobs?view=grid. Live events carry full
 * summaries (claims and results); the grid keeps only what it shows.
 * @param {JobSummary | GridJob} summary
 * @returns {GridJob}
 */
export function toGridJob (summary) {
  /** @type {Array<GridPlatform | JobSummary['platforms'][number]>} */
  const platforms = summary.platforms
  return { ...summary, platforms: platforms.map((p) => ('running' in p ? p : gridPlatform(p))) }
}

/**
 * What one cell shows. Decided platforms show their verdict and how many
 * builders agree; open ones say whether someone builds them now (running,
 * since the earliest claim) or nobody does (queued or unmatched, since the
 * job was submitted, with the node's reason).
 * @param {Pick<GridJob, 'cancelled' | 'reason' | 'time'>} job
 * @param {GridPlatform} platform
 * @returns {CellState}
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

/**
 * Whether the row deserves attention: a failure, a disagreement, or work nobody can take.
 * @param {GridJob} job
 */
export function rowIsProblem (job) {
  return isProblem(job.verdict) || job.crossPlatform === 'mismatch' || job.platforms.some((p) => isProblem(p.verdict))
}

/**
 * The union of every job's platform selectors, sorted: the grid's columns.
 * @param {GridJob[]} jobs
 * @returns {string[]}
 */
export function columnsOf (jobs) {
  /** @type {Set<string>} */
  const set = new Set()
  for (const job of jobs) for (const p of job.platforms) set.add(p.selector)
  return [...set].sort()
}

/** @param {GridJob} job */
function jobVerdictCell (job) {
  const cross = job.crossPlatform === 'mismatch' ? html` <span class="cross" title="platform-independent artifacts differ across platforms">≠ across platforms</span>` : nothing
  // An open job says whether anyone builds it now: "pending" alone hides the queue.
  /** @type {string} */
  let kind = job.verdict
  if (kind === 'pending') kind = job.platforms.some((p) => p.verdict === 'pending' && p.running.length > 0) ? 'running' : 'queued'
  return html`<td class="jv v-${kind}" title=${job.reason ?? nothing}>${kind}${cross}</td>`
}

/**
 * @param {GridJob} job
 * @param {GridPlatform | undefined} platform
 * @param {string} selector
 */
function platformCell (job, platform, selector) {
  if (platform === undefined) return html`<td class="c none"><span class="sr">not built here</span></td>`
  const state = cellState(job, platform)
  const clock = state.since !== undefined ? html` ${elapsedTag(state.since)}` : nothing
  return html`<td class="c v-${state.kind}" title=${state.reason !== '' ? state.reason : nothing} data-platform=${selector}><a href="#/job/${job.id}/${encodeURIComponent(selector)}">${state.label}${clock}</a></td>`
}

/**
 * One job's row; hidden when the name filter leaves it out.
 * @param {GridJob} job
 * @param {string[]} columns
 * @param {boolean} [hidden]
 */
export function rowTemplate (job, columns, hidden = false) {
  const bySelector = new Map(job.platforms.map((p) => [p.selector, p]))
  return html`<tr data-job=${job.id} class="r-${job.verdict}${rowIsProblem(job) ? ' problem' : ''}" ?hidden=${hidden}>
<th scope="row" class="job"><a href="#/job/${job.id}">${job.name}</a> <code class="id" title=${job.id}>${short(job.id)}</code></th>
<td class="when">${timeTag(job.time)}</td>${jobVerdictCell(job)}${columns.map((selector) => platformCell(job, bySelector.get(selector), selector))}</tr>`
}

/**
 * @typedef {object} GridSummary
 * @property {number} total
 * @property {Record<string, number>} verdicts jobs by verdict
 * @property {number} running platform slots someone builds now
 * @property {number} queued platform slots nobody builds yet
 * @property {number} problems rows that deserve attention
 */

/**
 * Counts for the line above the grid: jobs by verdict, and platform slots running or queued.
 * @param {GridJob[]} jobs
 * @returns {GridSummary}
 */
export function summaryOf (jobs) {
  /** @type {Record<string, number>} */
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

/** @param {GridSummary} s */
function summaryTemplate (s) {
  const counts = SUMMARY_ORDER.filter((verdict) => (s.verdicts[verdict] ?? 0) > 0)
    .map((verdict) => html` · <span class="count v-${verdict}">${s.verdicts[verdict]} ${verdict}</span>`)
  return html`<strong>${s.total}</strong> job${s.total === 1 ? '' : 's'}${counts} · builds: <span class="count v-running">${s.running} running</span> · <span class="count v-queued">${s.queued} queued</span>`
}

/** @param {GridSummary} s */
export function problemTitle (s) {
  if (s.total === 0) return 'buildhaus'
  return s.problems > 0 ? `buildhaus: ${s.problems} problem${s.problems > 1 ? 's' : ''}` : 'buildhaus: no problems'
}

/** @param {boolean} onlyProblems */
function pageTemplate (onlyProblems) {
  return html`<section class="grid-page" aria-labelledby="grid-title">
  <div class="toolbar">
    <h1 id="grid-title" tabindex="-1">Jobs</h1>
    <p class="summary" id="grid-summary"></p>
    <div class="filters">
      <label class="check"><input type="checkbox" id="only-problems" .checked=${onlyProblems}> Only problems</label>
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
}

/** @param {string[]} columns */
function headTemplate (columns) {
  return html`<tr><th scope="col" class="job">Job</th><th scope="col" class="when">Submitted</th><th scope="col" class="jv">Verdict</th>${columns.map((c) => html`<th scope="col" class="c">${c}</th>`)}</tr>`
}

/**
 * Mount the grid in `main`. `store` holds the job summaries (newest first)
 * and stays current through the live events; a change re-renders the list,
 * and lit-html updates only the rows and cells that differ.
 * @param {HTMLElement} main
 * @param {GridStore} store
 */
export function mountGrid (main, store) {
  let onlyProblems = false
  try { onlyProblems = localStorage.getItem(PROBLEMS_KEY) === '1' } catch {}
  render(pageTemplate(onlyProblems), main)
  const table = find(main, '#grid', HTMLTableElement)
  const thead = find(table, 'thead', HTMLTableSectionElement)
  const tbody = find(table, 'tbody', HTMLTableSectionElement)
  const summary = find(main, '#grid-summary', HTMLElement)
  const empty = find(main, '#grid-empty', HTMLElement)
  const search = find(main, '#grid-search', HTMLInputElement)
  const problemsBox = find(main, '#only-problems', HTMLInputElement)
  /** @type {string[]} */
  let columns = []
  let needle = ''
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let flushTimer

  const matches = (/** @type {GridJob} */ job) => needle === '' || job.name.toLowerCase().includes(needle)

  function renderSummary () {
    const s = summaryOf(store.list())
    render(summaryTemplate(s), summary)
    document.title = problemTitle(s)
    empty.hidden = s.total > 0 || !store.loaded
  }

  /** Rows shown in the first frame; the rest follow in the next task, so the top of the grid appears at once. */
  const FIRST_ROWS = 60
  let generation = 0
  let complete = false

  /** @param {GridJob[]} jobs */
  function renderRows (jobs) {
    render(repeat(jobs, (job) => job.id, (job) => rowTemplate(job, columns, !matches(job))), tbody)
  }

  function renderAll () {
    const jobs = store.list()
    const mine = ++generation
    columns = columnsOf(jobs)
    render(headTemplate(columns), thead)
    complete = jobs.length <= FIRST_ROWS
    renderRows(complete ? jobs : jobs.slice(0, FIRST_ROWS))
    renderSummary()
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
        // The store as it is now: live events may have changed it meanwhile.
        renderRows(store.list())
        complete = true
        mark('buildhaus:grid-complete')
        requestAnimationFrame(() => setTimeout(() => mark('buildhaus:grid-complete-painted'), 0))
      }, 0))
    }
  }

  /** @param {string} name */
  function mark (name) {
    if (performance.getEntriesByName(name).length === 0) performance.mark(name)
  }

  function flush () {
    flushTimer = undefined
    // Changes wait for the rest of the first render, which shows them.
    if (!complete) return
    const jobs = store.list()
    if (columnsOf(jobs).join('\n') !== columns.join('\n')) { renderAll(); return }
    renderRows(jobs)
    renderSummary()
  }

  problemsBox.addEventListener('change', () => {
    onlyProblems = problemsBox.checked
    table.classList.toggle('only-problems', onlyProblems)
    try { localStorage.setItem(PROBLEMS_KEY, onlyProblems ? '1' : '0') } catch {}
  })
  search.addEventListener('input', () => {
    needle = search.value.trim().toLowerCase()
    if (complete) renderRows(store.list())
  })

  if (store.loaded) renderAll()
  return {
    focus: () => { find(main, '#grid-title', HTMLElement).focus() },
    /** The whole list was (re)loaded. */
    reload: renderAll,
    /** One job changed or arrived (the store already holds it). */
    job () {
      flushTimer ??= setTimeout(flush, 30)
    },
    unmount () { clearTimeout(flushTimer) }
  }
}
