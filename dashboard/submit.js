// @ts-check
// Submit a job from the page: pick a .tar or .tar.gz of the source directory
// (with buildhaus.json at its top), optionally override platforms, replicas
// and timeout; the archive is uploaded as a blob (POST /api/blobs) and the
// job published with its spec (POST /api/jobs).

import { html, nothing, render } from 'lit-html'
import { postBytes, postJson } from './api.js'
import { bytes, find, messageOf } from './format.js'
import { readSpecFromArchive } from './tar.js'

/** The node's bounds (src/jobs/constants.ts): checked here only to answer sooner. */
const MAX_REPLICAS = 7
const MAX_TIMEOUT_S = 24 * 60 * 60
const DEFAULT_TIMEOUT_S = 30 * 60
const MAX_UPLOAD_BYTES = 256 * 1024 * 1024

/** @typedef {import('./types.js').JobView} JobView */
/** @typedef {import('./types.js').Page} Page */
/** @typedef {import('./types.js').PageContext} PageContext */
/** @typedef {import('../src/jobs/spec.js').SpecOverrides} SpecOverrides */

/**
 * What the archive's buildhaus.json says, as written by whoever made it (the node validates it on submission).
 * @param {Record<string, unknown>} spec
 */
function specPreview (spec) {
  const platforms = Array.isArray(spec.platforms)
    ? spec.platforms.map((p) => (Array.isArray(p) ? p.join('+') : String(p))).join(', ')
    : 'not given: this node\'s own platform'
  const replicas = typeof spec.replicas === 'object' && spec.replicas !== null
    ? Object.entries(spec.replicas).map(([k, v]) => `${k} × ${String(v)}`).join(', ')
    : String(spec.replicas ?? 'default')
  const artifacts = Array.isArray(spec.artifacts) && spec.artifacts.length > 0
    ? spec.artifacts.map((a, i) => html`${i > 0 ? ', ' : ''}<code>${String(a)}</code>`)
    : 'none'
  return html`<h2>From buildhaus.json</h2><dl class="facts">
<dt>Name</dt><dd>${String(spec.name ?? '')}</dd>
<dt>Platforms</dt><dd>${platforms}</dd>
<dt>Replicas</dt><dd>${replicas}</dd>
<dt>Timeout</dt><dd>${spec.timeout !== undefined ? `${String(spec.timeout)} s` : `default, ${DEFAULT_TIMEOUT_S} s`}</dd>
<dt>Artifacts</dt><dd>${artifacts}</dd>
</dl><ol class="steps-list">${Array.isArray(spec.steps) ? spec.steps.map((s) => html`<li><strong>${String(s?.name ?? '')}</strong> <code>${String(s?.run ?? '')}</code></li>`) : nothing}</ol>`
}

/**
 * The overrides the form's fields ask for, or an error message.
 * @param {{ platforms: string, replicas: string, timeout: string }} fields
 * @returns {{ overrides: SpecOverrides, error?: undefined } | { error: string, overrides?: undefined }}
 */
export function readOverrides (fields) {
  /** @type {SpecOverrides} */
  const overrides = {}
  const platforms = fields.platforms.split(/[\s,]+/).filter((p) => p !== '')
  if (platforms.length > 0) overrides.platforms = platforms
  if (fields.replicas !== '') {
    const n = Number(fields.replicas)
    if (!Number.isInteger(n) || n < 1 || n > MAX_REPLICAS) return { error: `Replicas must be a whole number from 1 to ${MAX_REPLICAS}.` }
    overrides.replicas = n
  }
  if (fields.timeout !== '') {
    const n = Number(fields.timeout)
    if (!Number.isInteger(n) || n < 1 || n > MAX_TIMEOUT_S) return { error: `The timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT_S}.` }
    overrides.timeout = n
  }
  return { overrides }
}

/**
 * @param {HTMLElement} main
 * @param {PageContext} context
 * @returns {Page}
 */
export function mountSubmit (main, context) {
  render(html`<section aria-labelledby="submit-title" class="submit-page">
<h1 id="submit-title" tabindex="-1">Submit a job</h1>
<p>Pick an archive of the source directory — a <code>.tar</code> or <code>.tar.gz</code> with <code>buildhaus.json</code> at its top level, as made by <code>tar czf source.tar.gz -C DIR .</code> From a shell, <code>buildhaus-node submit DIR</code> does the packing for you.</p>
<form id="submit-form" novalidate>
  <div class="field">
    <label for="archive">Source archive</label>
    <input id="archive" name="archive" type="file" accept=".tar,.tgz,.tar.gz,application/x-tar,application/gzip" required aria-describedby="archive-state">
    <p id="archive-state" class="hint" aria-live="polite"></p>
  </div>
  <div id="spec-preview" class="preview"></div>
  <fieldset>
    <legend>Overrides (optional)</legend>
    <div class="field">
      <label for="platforms">Platforms</label>
      <input id="platforms" name="platforms" type="text" placeholder="e.g. linux-x64 linux-arm64+debian-12" autocomplete="off" spellcheck="false" aria-describedby="platforms-hint">
      <p id="platforms-hint" class="hint">Selectors separated by spaces or commas; they replace the file's platforms.</p>
    </div>
    <div class="field">
      <label for="replicas">Replicas</label>
      <input id="replicas" name="replicas" type="number" min="1" max=${MAX_REPLICAS} step="1" inputmode="numeric" aria-describedby="replicas-hint">
      <p id="replicas-hint" class="hint">Builders per platform whose results must agree.</p>
    </div>
    <div class="field">
      <label for="timeout">Timeout (seconds)</label>
      <input id="timeout" name="timeout" type="number" min="1" max=${MAX_TIMEOUT_S} step="1" inputmode="numeric">
    </div>
  </fieldset>
  <p><button type="submit" id="submit-button">Submit</button> <span id="submit-state" class="hint" role="status"></span></p>
</form>
</section>`, main)
  const form = find(main, '#submit-form', HTMLFormElement)
  const archive = find(form, '#archive', HTMLInputElement)
  const archiveState = find(main, '#archive-state', HTMLElement)
  const preview = find(main, '#spec-preview', HTMLElement)
  const state = find(main, '#submit-state', HTMLElement)
  const button = find(main, '#submit-button', HTMLButtonElement)
  const field = (/** @type {string} */ id) => find(form, `#${id}`, HTMLInputElement).value
  /** @type {{ file: File, spec: Record<string, unknown> } | undefined} */
  let parsed
  let busy = false

  async function inspect () {
    parsed = undefined
    render(nothing, preview)
    const file = archive.files?.[0]
    if (file === undefined) { archiveState.textContent = ''; return }
    archiveState.textContent = `Reading ${file.name}…`
    try {
      if (file.size > MAX_UPLOAD_BYTES) throw new Error(`${file.name} is ${bytes(file.size)}; the node takes archives up to ${bytes(MAX_UPLOAD_BYTES)}`)
      const text = await readSpecFromArchive(file)
      /** @type {unknown} */
      let spec
      try {
        spec = JSON.parse(text)
      } catch (err) {
        throw new Error(`buildhaus.json is not valid JSON (${messageOf(err)})`, { cause: err })
      }
      if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('buildhaus.json must hold a JSON object such as {"name": …, "steps": […]}')
      parsed = { file, spec: /** @type {Record<string, unknown>} */ (spec) }
      archiveState.textContent = `${file.name}, ${bytes(file.size)}: found buildhaus.json.`
      render(specPreview(parsed.spec), preview)
    } catch (err) {
      archiveState.textContent = `${file.name}: ${messageOf(err)}`
      archiveState.classList.add('error')
      return
    }
    archiveState.classList.remove('error')
  }

  archive.addEventListener('change', () => { void inspect() })
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    if (busy) return
    if (parsed === undefined) {
      state.textContent = archive.files?.[0] === undefined ? 'Pick a source archive first.' : 'This archive cannot be submitted; see above.'
      archive.focus()
      return
    }
    const read = readOverrides({ platforms: field('platforms'), replicas: field('replicas'), timeout: field('timeout') })
    if (read.error !== undefined) { state.textContent = read.error; return }
    const { overrides } = read
    busy = true
    button.disabled = true
    try {
      state.textContent = `Uploading ${bytes(parsed.file.size)}…`
      const source = /** @type {{ hash: string, size: number }} */ (await postBytes('/api/blobs', parsed.file))
      state.textContent = 'Publishing the job…'
      const job = /** @type {JobView} */ (await postJson('/api/jobs', { spec: parsed.spec, overrides, source: { hash: source.hash, size: source.size } }))
      state.textContent = 'Submitted.'
      location.hash = `#/job/${job.id}`
    } catch (err) {
      state.textContent = ''
      context.reportError(err, 'Submitting')
    } finally {
      busy = false
      button.disabled = false
    }
  })

  return {
    focus: () => { find(main, 'h1', HTMLElement).focus() },
    unmount () {}
  }
}
