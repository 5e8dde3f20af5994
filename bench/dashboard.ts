import { createHash } from 'node:crypto'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import Fastify from 'fastify'
import { chromium, type Browser } from 'playwright-core'
import { generateNodeKey } from '../src/crypto/keys.js'
import { createSigner } from '../src/crypto/sign.js'
import { jobEntryRules } from '../src/jobs/bodies.js'
import { EntryCodec, type DecodedEntry } from '../src/ledger/entry.js'
import { LedgerStore } from '../src/ledger/index.js'
import { buildNodeConfig } from '../src/node/config.js'
import { startNode, type RunningNode } from '../src/node/daemon.js'
import { packageRoot } from '../src/util/package-root.js'
import { waitFor } from '../src/util/wait.js'
import { median, percentile, round } from './stats.js'

/**
 * The dashboard at the size of a busy mesh: 1,000 jobs × 4 platforms, each
 * platform with 2 builders' signed claims and results (17,000 entries written
 * by five real keys through the real codec and LevelDB store, then ingested,
 * signatures checked, by one real node whose real API and page are measured).
 *
 * - grid: navigation start → the frame that shows every row, in headless
 *   chromium, fresh browser context each run (cold cache). Baseline: the very
 *   same grid as one static HTML document (the page's rendered DOM with its
 *   CSS inlined) served by fastify in this process.
 * - api: GET /api/jobs latency, 200 requests 4 at a time. Baseline: GET
 *   /api/health on the same server in the same way.
 */

const PLATFORMS = ['darwin-arm64', 'linux-arm64', 'linux-x64', 'windows-x64']
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']

export interface DashboardBenchOptions {
  jobs?: number
  /** Page loads measured (the median is reported). */
  loads?: number
  requests?: number
  concurrency?: number
}

export async function benchDashboard (options: DashboardBenchOptions = {}): Promise<Record<string, unknown>> {
  const jobCount = options.jobs ?? 1000
  const loads = options.loads ?? 7
  const requests = options.requests ?? 200
  const concurrency = options.concurrency ?? 4
  const dir = await mkdtemp(join(tmpdir(), 'buildhaus-bench-dashboard-'))
  let node: RunningNode | undefined
  let browser: Browser | undefined
  try {
    const started = performance.now()
    const lines = await writeLedger(join(dir, 'writers'), jobCount)
    const writeMs = performance.now() - started

    node = await startNode(buildNodeConfig({
      home: join(dir, 'node'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false,
      platform: ['linux-x64'], slots: '0', api: '127.0.0.1:0',
      // The synthetic log is written by throwaway keys, members of no mesh: count everyone, so the
      // grid shows the mix of verdicts it is measured with (the bench is about serving, not trust).
      trust: 'everyone'
    }, {}), { writeApiFile: false, warn: () => {} })
    const ingestStart = performance.now()
    for (let i = 0; i < lines.length; i += 2000) await node.ledger.ingest(lines.slice(i, i + 2000))
    const served = node
    await waitFor(() => served.jobs.list().length === jobCount, { timeoutMs: 120_000, what: `the node to fold ${jobCount} jobs` })
    const ingestMs = performance.now() - ingestStart

    const api = {
      grid: await latency(`${node.apiUrl}/api/jobs?view=grid`, requests, concurrency),
      jobs: await latency(`${node.apiUrl}/api/jobs`, requests, concurrency),
      health: await latency(`${node.apiUrl}/api/health`, requests, concurrency)
    }

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    const grid = await gridLoads(browser, `${node.apiUrl}/`, jobCount, loads)
    const baseline = await staticLoads(browser, grid.snapshot, loads)

    return {
      jobs: jobCount,
      platforms: PLATFORMS.length,
      entries: lines.length,
      setup: { writeMs: round(writeMs), ingestAndFoldMs: round(ingestMs) },
      // Navigation start → the frame showing the grid's first rows (the top of the page).
      gridFirstRender: {
        ms: round(grid.paintedMs),
        firstRowsBuiltMs: round(grid.renderedMs),
        jobsResponseEndMs: round(grid.jobsResponseEndMs),
        baselineStaticHtmlMs: round(baseline.ms),
        baselineBytes: baseline.bytes,
        ratio: round(grid.paintedMs / baseline.ms),
        loads
      },
      // Navigation start → the frame after all rows are in the table.
      gridAllRows: {
        ms: round(grid.completeMs),
        baselineStaticHtmlMs: round(baseline.ms),
        ratio: round(grid.completeMs / baseline.ms)
      },
      // What the grid loads.
      apiJobsGridView: {
        p50Ms: round(api.grid.p50), p99Ms: round(api.grid.p99), bytes: api.grid.bytes,
        baselineHealthP50Ms: round(api.health.p50), baselineHealthP99Ms: round(api.health.p99),
        ratioP50: round(api.grid.p50 / api.health.p50), ratioP99: round(api.grid.p99 / api.health.p99),
        requests, concurrency
      },
      // Full summaries (every result's artifacts), for scripts and the CLI.
      apiJobsFull: {
        p50Ms: round(api.jobs.p50), p99Ms: round(api.jobs.p99), bytes: api.jobs.bytes,
        ratioP50: round(api.jobs.p50 / api.health.p50), ratioP99: round(api.jobs.p99 / api.health.p99)
      }
    }
  } finally {
    await browser?.close()
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A submitter's chain of `count` jobs and four builders' chains of claims
 * and results, appended through real stores with real keys; returns the
 * lines in an order a node can ingest (each chain in order, jobs first).
 */
async function writeLedger (dir: string, count: number): Promise<string[]> {
  const codec = new EntryCodec(jobEntryRules)
  const open = async (name: string): Promise<LedgerStore> => {
    const store = await LedgerStore.open({ path: join(dir, name), codec, signer: createSigner(generateNodeKey()) })
    store.allowAppend()
    return store
  }
  const submitter = await open('submitter')
  const builders = await Promise.all([0, 1, 2, 3].map(async (i) => await open(`builder${i}`)))
  try {
    const sha = (text: string): string => createHash('sha256').update(text).digest('hex')
    const jobs = await Promise.all(Array.from({ length: count }, async (_, i) => await submitter.append('job', {
      name: `package-${i % 97}`, source: sha(`source ${i}`), sourceSize: 40_000 + i, steps: [{ name: 'build', run: 'make' }, { name: 'test', run: 'make check' }],
      platforms: PLATFORMS.map((selector) => ({ selector, labels: [selector], replicas: 2 })),
      artifacts: ['dist/*'], independent: [], timeout: 600, limits: {}, network: false, root: false
    })))
    const jobLines = jobs.map((e) => e.line)
    const written: DecodedEntry[][] = []
    for (const [b, builder] of builders.entries()) {
      await builder.ingest(jobLines)
      const appends: Array<Promise<DecodedEntry>> = []
      jobs.forEach((job, i) => {
        PLATFORMS.forEach((platform, p) => {
          // Two builders per platform: (p, p+1) mod 4.
          const replica = (b - p + 4) % 4
          if (replica > 1) return
          // A mix like a real farm: mostly verified, some failures and mismatches, a few still open.
          const kind = i % 50 === 3 && p === 1 ? 'queued' : i % 50 === 7 && p === 2 ? 'running' : i % 20 === 5 && p === 0 ? 'failed' : i % 33 === 9 && p === 3 ? 'mismatch' : 'verified'
          if (kind === 'queued') return
          appends.push(builder.append('claim', { job: job.id, platform, lease: Date.now() + 3_600_000 }))
          if (kind === 'running') return
          const fail = kind === 'failed'
          const artifactSeed = kind === 'mismatch' ? `${i} ${platform} ${b}` : `${i} ${platform}`
          appends.push(builder.append('result', {
            job: job.id, platform, status: fail ? 'fail' : 'pass',
            steps: [{ name: 'build', exit: 0, ms: 41_000 + b }, { name: 'test', exit: fail ? 1 : 0, ms: 12_000 }],
            log: sha(`log ${i} ${platform} ${b}`), logSize: 120_000,
            artifacts: fail ? [] : [{ path: 'dist/package.tar.gz', sha256: sha(artifactSeed), size: 50_000 }, { path: 'dist/package.whl', sha256: sha(`whl ${i} ${platform}`), size: 30_000 }],
            env: { os: 'Debian GNU/Linux 12', kernel: '6.1.0', arch: platform.split('-')[1]!, sandbox: 'bubblewrap 0.8.0', tools: { cc: 'gcc 12.2.0', make: 'GNU Make 4.3' } },
            start: Date.now() - 60_000, end: Date.now()
          }))
        })
      })
      written.push(await Promise.all(appends))
    }
    return [...jobLines, ...written.flat().map((e) => e.line)]
  } finally {
    await Promise.all([submitter, ...builders].map(async (s) => { await s.close() }))
  }
}

/**
 * Request latency seen by a client in a worker thread (its own event loop,
 * so reading a large answer does not hold up the server it measures).
 */
async function latency (url: string, requests: number, concurrency: number): Promise<{ p50: number, p99: number, bytes: number }> {
  const worker = new Worker(LOAD_WORKER, { eval: true, workerData: { url, requests, concurrency } })
  try {
    const result = await new Promise<{ times: number[], bytes: number }>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    const times = result.times.sort((a, b) => a - b)
    return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), bytes: result.bytes }
  } finally {
    await worker.terminate()
  }
}

/** The load generator: a warm-up request, then `requests` GETs, `concurrency` at a time. */
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { url, requests, concurrency } = workerData
;(async () => {
  const times = []
  let bytes = 0
  let next = 0
  await (await fetch(url)).arrayBuffer()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++
      const start = performance.now()
      const response = await fetch(url)
      const body = await response.arrayBuffer()
      times.push(performance.now() - start)
      if (!response.ok) throw new Error('GET ' + url + ' answered ' + response.status)
      bytes = body.byteLength
    }
  }))
  parentPort.postMessage({ times, bytes })
})().catch((err) => { throw err })
`

interface GridLoads {
  paintedMs: number
  completeMs: number
  renderedMs: number
  jobsResponseEndMs: number
  snapshot: string
}

async function gridLoads (browser: Browser, url: string, rows: number, loads: number): Promise<GridLoads> {
  const painted: number[] = []
  const completed: number[] = []
  const rendered: number[] = []
  const responses: number[] = []
  let snapshot = ''
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    const page = await context.newPage()
    await page.goto(url)
    await page.waitForFunction(() => performance.getEntriesByName('buildhaus:grid-complete-painted').length > 0, undefined, { timeout: 60_000 })
    const timing = await page.evaluate(() => ({
      painted: performance.getEntriesByName('buildhaus:grid-painted')[0]!.startTime,
      complete: performance.getEntriesByName('buildhaus:grid-complete-painted')[0]!.startTime,
      rendered: performance.getEntriesByName('buildhaus:grid-rendered')[0]!.startTime,
      jobs: (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).find((r) => r.name.includes('/api/jobs'))?.responseEnd ?? 0,
      rows: document.querySelectorAll('#grid tbody tr').length
    }))
    if (timing.rows !== rows) throw new Error(`the grid shows ${timing.rows} rows, not ${rows}`)
    painted.push(timing.painted)
    completed.push(timing.complete)
    rendered.push(timing.rendered)
    responses.push(timing.jobs)
    if (i === 0) snapshot = await page.evaluate(() => document.body.innerHTML)
    await context.close()
  }
  return { paintedMs: median(painted), completeMs: median(completed), renderedMs: median(rendered), jobsResponseEndMs: median(responses), snapshot }
}

/** The rendered grid as a plain document: same DOM and CSS, no script, no API call. */
async function staticLoads (browser: Browser, body: string, loads: number): Promise<{ ms: number, bytes: number }> {
  const css = await readFile(join(packageRoot(), 'dashboard', 'style.css'), 'utf8')
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>static grid</title><style>${css}</style></head><body>${body}` +
    '<script>requestAnimationFrame(() => setTimeout(() => performance.mark(\'static-painted\'), 0))</script></body></html>'
  const server = Fastify({ logger: false })
  server.get('/', async (_request, reply) => await reply.type('text/html; charset=utf-8').send(html))
  const url = await server.listen({ host: '127.0.0.1', port: 0 })
  try {
    const times: number[] = []
    for (let i = 0; i < loads; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
      const page = await context.newPage()
      await page.goto(url)
      await page.waitForFunction(() => performance.getEntriesByName('static-painted').length > 0, undefined, { timeout: 60_000 })
      times.push(await page.evaluate(() => performance.getEntriesByName('static-painted')[0]!.startTime))
      await context.close()
    }
    return { ms: median(times), bytes: Buffer.byteLength(html) }
  } finally {
    await server.close()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchDashboard(), null, 2))
  // libp2p sockets and worker threads may outlive the figures.
  process.exit(0)
}
