import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterAll } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess, type CliResult, type NodeProcess } from './cluster.js'
import { tempDir } from './temp-home.js'

type Teardown = (fn: () => unknown) => void

/**
 * Helpers for the multi-process job tests (test/e2e/jobs-*): job directories,
 * submitting through the CLI or the API, reading every node's view of a job,
 * and clusters whose nodes offer chosen platform labels.
 */

/**
 * Like useTeardown, but for a whole file: cleanups run in reverse order after
 * the last test. For clusters that several tests of a file share.
 */
export function useSuiteTeardown (): Teardown {
  const stack: Array<() => unknown> = []
  afterAll(async () => {
    const errors: unknown[] = []
    while (stack.length > 0) {
      try {
        await stack.pop()!()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) throw errors[0]
  })
  return (fn) => { stack.push(fn) }
}

/** A buildhaus.json as a test writes it (fields as in docs/JOBS.md; anything goes, to test refusals). */
export type SpecJson = Record<string, unknown>

/** A job directory: buildhaus.json plus extra files (path → content). */
export async function writeJobDir (teardown: Teardown, spec: SpecJson | string, files: Record<string, string> = {}): Promise<string> {
  const dir = await tempDir(teardown, 'buildhaus-job-')
  await writeFile(join(dir, 'buildhaus.json'), typeof spec === 'string' ? spec : JSON.stringify(spec, null, 2))
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await writeFile(join(dir, path), content)
  }
  return dir
}

/** `buildhaus-node submit DIR --api URL --json …` */
export async function submitCli (node: NodeProcess, dir: string, args: string[] = [], timeoutMs = 60_000): Promise<CliResult> {
  return await runCli(['submit', dir, '--api', node.apiUrl, '--json', ...args], { timeoutMs })
}

/** Submit through the CLI and return the job as the node answered it; fails the test on a non-zero exit. */
export async function submitJob (node: NodeProcess, dir: string, args: string[] = []): Promise<JobView> {
  const result = await submitCli(node, dir, args)
  if (result.code !== 0) throw new Error(`submit exited ${String(result.code)}: ${result.stderr.trim()}`)
  return JSON.parse(result.stdout) as JobView
}

export interface ApiAnswer<T = unknown> {
  status: number
  body: T
}

/** One API request; answers with the status and the parsed JSON body, whatever the status. */
export async function apiRequest<T = unknown> (apiUrl: string, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
  const raw = body instanceof Uint8Array
  const response = await fetch(new URL(path, apiUrl), {
    method,
    headers: body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : 'application/json' },
    ...(body !== undefined ? { body: raw ? body as unknown as BodyInit : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(15_000)
  })
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = text
  }
  return { status: response.status, body: parsed as T }
}

/** Upload bytes as a blob; returns its hash and size. */
export async function uploadBlob (node: NodeProcess, bytes: Uint8Array): Promise<{ hash: string, size: number }> {
  const answer = await apiRequest<{ hash: string, size: number }>(node.apiUrl, 'POST', '/api/blobs', bytes)
  if (answer.status !== 201) throw new Error(`uploading a blob answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  return answer.body
}

/** POST /api/jobs with an already uploaded source (what `submit` does after packing). */
export async function postJob (node: NodeProcess, spec: SpecJson, source: { hash: string, size: number }, overrides?: Record<string, unknown>): Promise<JobView> {
  const answer = await apiRequest<JobView>(node.apiUrl, 'POST', '/api/jobs', { spec, source, ...(overrides !== undefined ? { overrides } : {}) })
  if (answer.status !== 201) throw new Error(`submitting a job answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  return answer.body
}

/** GET /api/jobs/<id> on one node; undefined while it does not know the job. */
export async function jobOn (node: NodeProcess, id: string): Promise<JobView | undefined> {
  const answer = await apiRequest<JobView>(node.apiUrl, 'GET', `/api/jobs/${id}`)
  if (answer.status === 404) return undefined
  if (answer.status !== 200) throw new Error(`GET /api/jobs/${id} answered ${answer.status}`)
  return answer.body
}

/** Wait until `node`'s view of the job satisfies `done`; returns that view. */
export async function waitForJob (node: NodeProcess, id: string, done: (job: JobView) => boolean, timeoutMs: number, what: string): Promise<JobView> {
  return await waitFor(async () => {
    const job = await jobOn(node, id)
    return job !== undefined && done(job) ? job : undefined
  }, { timeoutMs, intervalMs: 100, what })
}

export const isDecided = (job: JobView): boolean => ['verified', 'failed', 'mismatch', 'cancelled'].includes(job.verdict)

/** What every node must agree on about a job: verdicts, and who delivered which outcome. */
export function verdictSummary (job: JobView): unknown {
  return {
    verdict: job.verdict,
    crossPlatform: job.crossPlatform.verdict,
    platforms: job.platforms.map((p) => ({
      selector: p.selector,
      verdict: p.verdict,
      results: p.results.map((r) => `${r.builder} ${r.status} ${r.artifacts.map((a) => `${a.path}:${a.sha256}`).join(',')}`).sort()
    }))
  }
}

/** Builders with a non-refused result on a platform. */
export function buildersOf (job: JobView, selector: string): string[] {
  return (job.platforms.find((p) => p.selector === selector)?.results ?? []).filter((r) => r.status !== 'refused').map((r) => r.builder)
}

/**
 * Nodes offering the given labels (one entry per node, e.g. [['lab-a'], ['lab-b']]),
 * started one after another, each bootstrapping from the first; resolves once
 * every node hears every other. Stopped at teardown.
 */
export async function startLabelledCluster (teardown: Teardown, labels: string[][], options: { slots?: number, args?: string[] } = {}): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = []
  for (const nodeLabels of labels) {
    const args = [
      ...nodeLabels.flatMap((l) => ['--platform', l]),
      '--slots', String(options.slots ?? 1),
      ...(options.args ?? []),
      ...(nodes.length > 0 ? ['--bootstrap', nodes[0]!.address] : [])
    ]
    nodes.push(await startNodeProcess(teardown, { args }))
  }
  await meshFormed(nodes)
  return nodes
}

/** Wait until every node lists every other as a live member. */
export async function meshFormed (nodes: NodeProcess[], timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => {
    for (const node of nodes) {
      const seen = await node.peerIds()
      if (nodes.some((other) => other !== node && !seen.includes(other.peerId))) return false
    }
    return true
  }, { timeoutMs, intervalMs: 100, what: `all ${nodes.length} nodes to hear each other` })
}

/** The author key (log name) of a node process. */
export function authorOf (node: NodeProcess): string {
  return node.ready.author
}
