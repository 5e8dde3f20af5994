import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { packDirectory } from '../../src/archive/index.js'
import type { JobView } from '../../src/jobs/index.js'
import type { GridJob, GridJobsResponse, JobsResponse } from '../../src/node/api/routes/jobs.js'
import type { RunningNode } from '../../src/node/daemon.js'
import { packageRoot } from '../../src/util/package-root.js'
import { waitFor } from '../../src/util/wait.js'
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing, nonLoopbackAddress, startMesh, waitDecided } from './mesh.js'
import { submitDir, writeJobDir } from '../helpers/job-dir.js'

const missing = chromiumMissing()
if (missing !== undefined) console.warn(`skipping the dashboard browser tests: ${missing}`)

/** The failing build prints more than the log viewer's first fetch (64 KiB), then the failure. */
const FAILURE_LINE = 'FAIL: test_widget expected 3 got 4'
const FIRST_LINES = 'line 1\nline 2\nline 3\n'

describe.skipIf(missing !== undefined)('the dashboard, in chromium, on a real mesh', () => {
  const cleanups: Array<() => unknown> = []
  let dir: string
  let nodes: RunningNode[]
  let browser: Browser
  let remoteHost: string | undefined
  const jobs: Record<'verified' | 'failed' | 'mismatch', JobView> = {} as never

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'buildhaus-browser-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    // The third node serves its API on this machine's network address: to it, the test is "another machine".
    remoteHost = nonLoopbackAddress()
    const mesh = await startMesh({ dir, count: 3, slots: 3, ...(remoteHost !== undefined ? { apiHosts: { 2: remoteHost } } : {}) })
    cleanups.push(mesh.stop)
    nodes = mesh.nodes
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    cleanups.push(async () => { await browser.close() })

    const examples = join(packageRoot(), 'examples')
    const failing = await writeJobDir(join(dir, 'failing'), {
      name: 'broken-test',
      replicas: 2,
      steps: [
        { name: 'build', run: 'echo compiling' },
        { name: 'test', run: `i=1; while [ $i -le 12000 ]; do echo "line $i"; i=$((i+1)); done; echo '${FAILURE_LINE}'; exit 1` }
      ],
      timeout: 60
    })
    const [verified, failed, mismatch] = await Promise.all([
      submitDir(nodes[0]!, join(examples, 'hello')),
      submitDir(nodes[0]!, failing),
      submitDir(nodes[0]!, join(examples, 'nondeterministic'))
    ])
    jobs.verified = await waitDecided(nodes[0]!, verified!.id)
    jobs.failed = await waitDecided(nodes[0]!, failed!.id)
    jobs.mismatch = await waitDecided(nodes[0]!, mismatch!.id)
  }, 120_000)

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup()
  })

  async function openPage (url: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => { errors.push(err.message) })
    cleanups.push(async () => {
      await context.close()
      // A script error in the page is a bug even when the assertions passed.
      expect(errors).toEqual([])
    })
    await page.goto(url)
    return page
  }

  const cell = (page: Page, job: string, platform = 'linux-x64') => page.locator(`tr[data-job="${job}"] td.c[data-platform="${platform}"]`)

  it('colours each verdict in the grid, says it in words, and filters to the problems', async () => {
    expect(jobs.verified.verdict).toBe('verified')
    expect(jobs.failed.verdict).toBe('failed')
    expect(jobs.mismatch.verdict).toBe('mismatch')
    const page = await openPage(`${nodes[0]!.apiUrl}/`)

    await expect.poll(async () => await cell(page, jobs.verified.id).getAttribute('class')).toContain('v-verified')
    await expect(cell(page, jobs.verified.id).innerText()).resolves.toMatch(/verified 2\/2/)
    await expect(cell(page, jobs.failed.id).getAttribute('class')).resolves.toContain('v-failed')
    await expect(cell(page, jobs.failed.id).innerText()).resolves.toMatch(/failed 2\/2/)
    await expect(cell(page, jobs.mismatch.id).getAttribute('class')).resolves.toContain('v-mismatch')
    await expect(cell(page, jobs.mismatch.id).innerText()).resolves.toMatch(/mismatch/)
    // The reason is on hover.
    await expect(cell(page, jobs.failed.id).getAttribute('title')).resolves.toMatch(/step "test" exited 1/)

    const colours = await Promise.all([jobs.verified, jobs.failed, jobs.mismatch].map(async (j) => await cell(page, j.id).evaluate((el) => getComputedStyle(el).backgroundColor)))
    expect(new Set(colours).size).toBe(3)

    // Failing and mismatching rows stand out; "only problems" hides the rest.
    await expect(page.locator(`tr[data-job="${jobs.failed.id}"]`).getAttribute('class')).resolves.toContain('problem')
    await expect(page.locator(`tr[data-job="${jobs.mismatch.id}"]`).getAttribute('class')).resolves.toContain('problem')
    await page.getByLabel('Only problems').check()
    await expect.poll(async () => await page.locator(`tr[data-job="${jobs.verified.id}"]`).isVisible()).toBe(false)
    expect(await page.locator(`tr[data-job="${jobs.failed.id}"]`).isVisible()).toBe(true)
    expect(await page.locator(`tr[data-job="${jobs.mismatch.id}"]`).isVisible()).toBe(true)
    await page.getByLabel('Only problems').uncheck()
    expect(await page.locator(`tr[data-job="${jobs.verified.id}"]`).isVisible()).toBe(true)
  })

  it('shows new jobs at the top without a reload: running ones with a live elapsed counter, unmatched ones with the reason; cancel from the job page', async () => {
    // Opened by the link `join` prints: the page keeps the token for the tab and takes it out of the address bar.
    const page = await openPage(nodes[0]!.dashboardLink)
    await expect.poll(() => new URL(page.url()).hash).toBe('#/')
    await expect(page.locator('#token-state').textContent()).resolves.toBe('a token is set for this tab')
    await cell(page, jobs.verified.id).waitFor()
    await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true })

    const slowDir = await writeJobDir(join(dir, 'slow'), { name: 'slow-suite', replicas: 2, steps: [{ name: 'wait', run: 'sleep 120' }], timeout: 300 })
    const slow = await submitDir(nodes[0]!, slowDir)
    await expect.poll(async () => await page.locator('#grid tbody tr').first().getAttribute('data-job'), { timeout: 20_000 }).toBe(slow.id)
    await expect.poll(async () => await cell(page, slow.id).getAttribute('class'), { timeout: 20_000 }).toContain('v-running')
    const counter = cell(page, slow.id).locator('.elapsed')
    const before = await counter.innerText()
    await expect.poll(async () => await counter.innerText(), { timeout: 10_000 }).not.toBe(before)

    const arm = await submitDir(nodes[0]!, join(packageRoot(), 'examples', 'hello'), { overrides: { platforms: ['linux-arm64'] } })
    await expect.poll(async () => await page.locator('#grid tbody tr').first().getAttribute('data-job'), { timeout: 20_000 }).toBe(arm.id)
    await expect.poll(async () => await cell(page, arm.id, 'linux-arm64').getAttribute('class')).toContain('v-unmatched')
    await expect(cell(page, arm.id, 'linux-arm64').getAttribute('title')).resolves.toBe('unmatched: no live node offers linux-arm64')
    await expect(cell(page, arm.id, 'linux-arm64').locator('.elapsed').count()).resolves.toBe(1)
    // A new column appeared for the new platform, and the page was never reloaded.
    await expect(page.locator('#grid thead th', { hasText: 'linux-arm64' }).count()).resolves.toBe(1)
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true)

    await saveScreenshot(page)

    // This node submitted it, so its page offers to cancel.
    await page.locator(`tr[data-job="${slow.id}"] th a`).click()
    await page.getByRole('heading', { level: 1, name: /slow-suite/ }).waitFor()
    page.once('dialog', (dialog) => { void dialog.accept() })
    await page.getByRole('button', { name: 'Cancel job' }).click()
    await expect.poll(async () => await page.locator('h1 .badge').innerText()).toMatch(/cancelled/)
    await waitFor(() => nodes[0]!.jobs.get(slow.id)?.cancelled, { timeoutMs: 10_000, what: 'the node to record the cancel' })
    await page.getByRole('link', { name: 'Grid' }).first().click()
    await expect.poll(async () => await cell(page, slow.id).getAttribute('class'), { timeout: 20_000 }).toContain('v-cancelled')
  })

  it('puts the builders\' artifact hashes side by side and marks the ones that differ', async () => {
    const page = await openPage(`${nodes[0]!.apiUrl}/#/job/${jobs.mismatch.id}`)
    const platform = jobs.mismatch.platforms[0]!
    const hashes = platform.results.filter((r) => r.status === 'pass').map((r) => r.artifacts.find((a) => a.path === 'out/stamp.txt')!.sha256)
    expect(new Set(hashes).size).toBeGreaterThan(1)
    const row = page.locator('table.artifacts tr.differs', { hasText: 'out/stamp.txt' })
    await row.waitFor()
    await expect(row.innerText()).resolves.toMatch(/differs/)
    const shown = await row.locator('td.hash code').allInnerTexts()
    expect(new Set(shown)).toEqual(new Set(hashes))
    // Each column is one builder's result.
    await expect(page.locator('table.artifacts thead th .key').count()).resolves.toBe(hashes.length)

    // Where builders agree, nothing is marked.
    await page.goto(`${nodes[0]!.apiUrl}/#/job/${jobs.verified.id}`)
    await page.locator('table.artifacts tr.same').first().waitFor()
    await expect(page.locator('table.artifacts tr.differs').count()).resolves.toBe(0)
    await expect(page.locator('table.artifacts tr.same').count()).resolves.toBe(2)
  })

  it('opens a failing build\'s log at its tail, and the whole log on demand', async () => {
    const page = await openPage(`${nodes[0]!.apiUrl}/#/job/${jobs.failed.id}`)
    const log = page.locator('details.log[open] pre.log-text').first()
    await expect.poll(async () => await log.count(), { timeout: 20_000 }).toBe(1)
    const tail = await log.innerText()
    expect(tail).toContain(FAILURE_LINE)
    expect(tail).not.toContain(FIRST_LINES)
    await expect(page.locator('details.log[open] .log-note').first().innerText()).resolves.toMatch(/end of the log/)

    await page.getByRole('button', { name: 'Show full log' }).first().click()
    await expect.poll(async () => await page.locator('details.log[open] pre.log-text').first().innerText()).toContain(FIRST_LINES)
    await expect(page.locator('details.log[open] pre.log-text').first().innerText()).resolves.toContain(FAILURE_LINE)
  })

  it('lists the mesh on the peers page', async () => {
    const page = await openPage(`${nodes[0]!.apiUrl}/#/peers`)
    await expect.poll(async () => await page.locator('#peers-table tbody tr').count(), { timeout: 20_000 }).toBe(3)
    await expect(page.locator('#peers-table tbody tr.self').innerText()).resolves.toContain('this node')
    await expect(page.locator('#peers-table tbody').innerText()).resolves.toContain('linux-x64')
    // Builders that took part have a reputation from the log.
    await expect.poll(async () => await page.locator('#peers-table meter').count()).toBeGreaterThan(0)
    // How each is reached: this node by its reachability, the others by their connection (loopback: direct).
    await expect(page.locator('#peers-table thead th', { hasText: 'Reached' }).count()).resolves.toBe(1)
    await expect(page.locator('#peers-table tbody tr.self td.reach').getAttribute('title')).resolves.toMatch(/dial this node/)
    await expect.poll(async () => await page.locator('#peers-table tbody tr:not(.self) td.reach').allInnerTexts(), { timeout: 20_000 }).toEqual(['direct', 'direct'])
  })

  it('shows a running build\'s output live, in order, and says when its run ended', async () => {
    // The page shows a live box only for a run it sees running: 12 s of output, so that a page opened late on a
    // loaded machine (once, in a full run, after the 5 s this job used to take) still finds it running.
    const spec = { name: 'slow-printer', replicas: 1, steps: [{ name: 'print', run: 'i=1; while [ $i -le 30 ]; do echo "live line $i"; i=$((i+1)); sleep 0.4; done' }], timeout: 120 }
    const job = await submitDir(nodes[0]!, await writeJobDir(join(dir, 'live'), spec))
    const page = await openPage(`${nodes[0]!.apiUrl}/#/job/${job.id}`)
    const box = page.locator('.live[data-platform="linux-x64"] details.live-log pre.log-text')
    await expect.poll(async () => await box.count(), { timeout: 30_000 }).toBe(1)
    await expect.poll(async () => await box.innerText(), { timeout: 30_000 }).toContain('live line 3')
    // The page re-renders as the job changes; the box keeps what it had.
    await expect.poll(async () => await page.locator('.live-log .live-state').innerText(), { timeout: 30_000 }).not.toBe('(running)')
    const text = await box.innerText()
    const lines = text.split('\n').filter((l) => l.startsWith('live line'))
    expect(lines).toEqual(Array.from({ length: lines.length }, (_, i) => `live line ${i + 1}`))
    await expect.poll(async () => await page.locator('h1 .badge').innerText(), { timeout: 30_000 }).toMatch(/verified/)
  })

  it('says a damaged token link is damaged, keeps no token and shows no token in the address bar', async () => {
    // A link cut in a copy: a stray % that does not decode. openPage's cleanup fails the test on any script error.
    const page = await openPage(`${nodes[0]!.apiUrl}/#token=abc%E0%A4%A`)
    await expect.poll(async () => await page.locator('#flash').innerText()).toMatch(/The link's token is damaged/)
    expect(new URL(page.url()).hash).toBe('#/')
    await expect(page.locator('#token-state').textContent()).resolves.toBe('no token set')
  })

  it('submits an uploaded archive from the page and follows the job to its verdict', async () => {
    const archive = join(dir, 'hello.tar.gz')
    await writeFile(archive, (await packDirectory(join(packageRoot(), 'examples', 'hello'))).bytes)
    const page = await openPage(nodes[0]!.dashboardLink)
    await page.goto(`${nodes[0]!.apiUrl}/#/submit`)

    // A tarball without buildhaus.json is refused before anything is uploaded.
    const empty = join(dir, 'nospec.tar.gz')
    await mkdir(join(dir, 'nospec'))
    await writeFile(join(dir, 'nospec', 'README'), 'no spec here\n')
    await writeFile(empty, (await packDirectory(join(dir, 'nospec'))).bytes)
    await page.getByLabel('Source archive').setInputFiles(empty)
    await expect.poll(async () => await page.locator('#archive-state').innerText()).toMatch(/no buildhaus\.json at its top level/)

    // Archives as people make them: tar's "./" names, a directory packed whole, something else entirely.
    const hello = join(packageRoot(), 'examples', 'hello')
    const plain = join(dir, 'dot.tar')
    execFileSync('tar', ['-cf', plain, '-C', hello, '.'])
    await page.getByLabel('Source archive').setInputFiles(plain)
    await expect.poll(async () => await page.locator('#archive-state').innerText()).toMatch(/found buildhaus\.json/)
    const nested = join(dir, 'nested.tar.gz')
    execFileSync('tar', ['-czf', nested, '-C', join(packageRoot(), 'examples'), 'hello'])
    await page.getByLabel('Source archive').setInputFiles(nested)
    await expect.poll(async () => await page.locator('#archive-state').innerText()).toMatch(/inside hello\/, not at the top.*tar czf source\.tar\.gz -C hello \./)
    const notTar = join(dir, 'words.txt.gz')
    execFileSync('sh', ['-c', `gzip -c '${join(hello, 'words.txt')}' > '${notTar}'`])
    await page.getByLabel('Source archive').setInputFiles(notTar)
    await expect.poll(async () => await page.locator('#archive-state').innerText()).toMatch(/not a tar archive inside its gzip/)

    const before = nodes[0]!.jobs.list().length
    await page.getByLabel('Source archive').setInputFiles(archive)
    await expect.poll(async () => await page.locator('#spec-preview').innerText()).toContain('hello')
    await page.getByLabel('Replicas').fill('1')
    await page.getByRole('button', { name: 'Submit' }).click()
    await page.waitForURL(/#\/job\/[0-9a-f]{64}$/, { timeout: 20_000 })
    const id = new URL(page.url()).hash.split('/')[2]!
    expect(nodes[0]!.jobs.list().length).toBe(before + 1)
    expect(nodes[0]!.jobs.get(id)?.platforms[0]?.replicas).toBe(1)
    // The page follows the job live until its verdict.
    await expect.poll(async () => await page.locator('h1 .badge').innerText(), { timeout: 30_000 }).toMatch(/verified/)
  })

  it('refuses changes from another machine without the token, and takes them with it', async () => {
    if (remoteHost === undefined) {
      console.warn('this machine has no non-loopback IPv4 address; the API guard is checked through fastify inject instead (test/browser/api-guard.test.ts)')
      return
    }
    const remote = nodes[2]!
    expect(new URL(remote.apiUrl).hostname).toBe(remoteHost)
    await waitFor(() => remote.jobs.get(jobs.verified.id), { timeoutMs: 10_000, what: 'the remote node to know the job' })
    const token = (await readFile(join(remote.config.home, 'api-token'), 'utf8')).trim()

    // From this process over the network address: a read is open, a change is refused.
    expect((await fetch(`${remote.apiUrl}/api/jobs/${jobs.verified.id}`)).status).toBe(200)
    const refused = await fetch(`${remote.apiUrl}/api/jobs/${jobs.verified.id}/rerun`, { method: 'POST' })
    expect(refused.status).toBe(403)
    expect(await refused.json()).toMatchObject({ error: { name: 'Forbidden', message: expect.stringMatching(/API token/) } })

    // The same from the page: the refusal is shown, the token field offered; with the token it works.
    const page = await openPage(`${remote.apiUrl}/#/job/${jobs.verified.id}`)
    const before = remote.jobs.list().length
    await page.getByRole('button', { name: 'Re-run' }).click()
    await expect.poll(async () => await page.locator('#flash').innerText()).toMatch(/refused.*API token/s)
    expect(remote.jobs.list().length).toBe(before)
    await page.getByLabel('Token').fill(token)
    await page.locator('#token-form button[type=submit]').click()
    await page.getByRole('button', { name: 'Re-run' }).click()
    await page.waitForURL((url) => url.hash.startsWith('#/job/') && !url.hash.includes(jobs.verified.id), { timeout: 20_000 })
    expect(remote.jobs.list().length).toBe(before + 1)
  })

  it('serves the grid\'s slim list, true to the full one, and never stale after a change', async () => {
    const url = `${nodes[0]!.apiUrl}/api/jobs`
    // Two requests are two moments: take the slim list between two equal full ones.
    const { full, grid } = await waitFor(async () => {
      const before = await (await fetch(url)).text()
      const slim = await (await fetch(`${url}?view=grid`)).json() as GridJobsResponse
      const after = await (await fetch(url)).text()
      return before === after ? { full: JSON.parse(after) as JobsResponse, grid: slim } : undefined
    }, { timeoutMs: 30_000, what: 'the job list to hold still for three requests' })
    expect(grid.total).toBe(full.total)
    expect(grid.jobs.map((j) => j.id)).toEqual(full.jobs.map((j) => j.id))
    for (const [i, job] of full.jobs.entries()) {
      const slim = grid.jobs[i]!
      expect(slim.verdict).toBe(job.verdict)
      for (const [k, p] of job.platforms.entries()) {
        const reported = new Set(p.results.map((r) => r.builder))
        expect(slim.platforms[k]).toMatchObject({ selector: p.selector, verdict: p.verdict, agreeing: p.agreeing, replicas: p.replicas })
        expect(slim.platforms[k]!.done).toBe(new Set(p.results.filter((r) => r.status !== 'refused').map((r) => r.builder)).size)
        expect(slim.platforms[k]!.running.map((r) => r.builder).sort()).toEqual([...new Set(p.claims.filter((c) => !reported.has(c.builder)).map((c) => c.builder))].sort())
      }
    }

    // A settled job's JSON is kept between requests; a change (here: its submitter cancels it) must show at once.
    const job = await waitDecided(nodes[0]!, (await submitDir(nodes[0]!, join(packageRoot(), 'examples', 'hello'), { overrides: { replicas: 1 } })).id)
    const listed = async (): Promise<GridJob | undefined> => ((await (await fetch(`${url}?view=grid`)).json()) as GridJobsResponse).jobs.find((j) => j.id === job.id)
    expect((await listed())?.verdict).toBe('verified')
    expect((await listed())?.verdict).toBe('verified')
    const token = (await readFile(join(nodes[0]!.config.home, 'api-token'), 'utf8')).trim()
    expect((await fetch(`${url}/${job.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{}' })).status).toBe(200)
    expect(await listed()).toMatchObject({ verdict: 'cancelled', cancelled: true })
    expect((await fetch(`${url}?view=everything`)).status).toBe(400)
  })

  it('shows what mesh members wrote as text, never as markup', async () => {
    const hostile = '<img src=x onerror="window.pwned=1">'
    const spec = { name: hostile, replicas: 1, steps: [{ name: `${hostile}step`, run: `echo '${hostile}'` }], timeout: 30 }
    const job = await submitDir(nodes[0]!, await writeJobDir(join(dir, 'hostile'), spec), { overrides: { platforms: ['linux-arm64'] } })
    const page = await openPage(`${nodes[0]!.apiUrl}/`)
    const name = page.locator(`tr[data-job="${job.id}"] th a`)
    await expect.poll(async () => await name.innerText(), { timeout: 20_000 }).toBe(hostile)
    await page.goto(`${nodes[0]!.apiUrl}/#/job/${job.id}`)
    await expect.poll(async () => await page.locator('h1').innerText()).toContain(hostile)
    await expect(page.locator('.steps-list').innerText()).resolves.toContain(`${hostile}step`)
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined()
    await expect(page.locator('main img').count()).resolves.toBe(0)
  })

  it('ignores a change another web site\'s page sends through the browser', async () => {
    const evil = await startBlankSite()
    cleanups.push(async () => { await new Promise((resolve) => evil.server.close(resolve)) })
    const page = await openPage(evil.url)
    const before = nodes[0]!.jobs.list().length
    // A "simple" cross-site POST needs no preflight: the browser sends it, and the node must refuse it.
    const target = `${nodes[0]!.apiUrl}/api/jobs/${jobs.verified.id}/rerun`
    await page.evaluate(async (url) => { await fetch(url, { method: 'POST', mode: 'no-cors', body: 'x' }) }, target)
    expect(nodes[0]!.jobs.list().length).toBe(before)
  })
})

/** A page of another origin, with no content policy of its own. */
async function startBlankSite (): Promise<{ server: Server, url: string }> {
  const server = createServer((_request, response) => { response.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>elsewhere</title><p>another site') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as { port: number }
  // "localhost" is another origin than the node's 127.0.0.1.
  return { server, url: `http://localhost:${address.port}/` }
}

/** The README's picture of the grid: kept in docs/ when BUILDHAUS_UPDATE_SCREENSHOT=1, else only checked that it renders. */
async function saveScreenshot (page: Page): Promise<void> {
  const png = await page.screenshot({ fullPage: false })
  expect(png.subarray(1, 4).toString()).toBe('PNG')
  if (process.env.BUILDHAUS_UPDATE_SCREENSHOT === '1') await writeFile(join(packageRoot(), 'docs', 'grid.png'), png)
}
