import { afterAll } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli, startNodeProcess, waitForMesh, type CliResult, type NodeProcess } from './cluster.js'
import type { SpecJson } from './job-dir.js'

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

/** `buildhaus-node submit DIR --api URL --home DIR --json …` (the home gives the API token every change needs) */
export async function submitCli (node: NodeProcess, dir: string, args: string[] = [], timeoutMs = 60_000): Promise<CliResult> {
  return await runCli(['submit', dir, '--api', node.apiUrl, '--home', node.home, '--json', ...args], { timeoutMs })
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

/** A node's API as the helpers need it: where it is and its token. */
export interface ApiTarget {
  apiUrl: string
  token: () => Promise<string>
}

/** One API request; answers with the status and the parsed JSON body, whatever the status. */
export async function apiRequest<T = unknown> (node: ApiTarget, method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
  const raw = body instanceof Uint8Array
  // Changes need the node's token from loopback too (src/node/api/auth.ts); reads do not, and get none.
  const authorization: Record<string, string> = method === 'GET' ? {} : { authorization: `Bearer ${await node.token()}` }
  const response = await fetch(new URL(path, node.apiUrl), {
    method,
    headers: body === undefined ? authorization : { ...authorization, 'content-type': raw ? 'application/octet-stream' : 'application/json' },
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
  const answer = await apiRequest<{ hash: string, size: number }>(node, 'POST', '/api/blobs', bytes)
  if (answer.status !== 201) throw new Error(`uploading a blob answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  return answer.body
}

/** POST /api/jobs with an already uploaded source (what `submit` does after packing). */
export async function postJob (node: NodeProcess, spec: SpecJson, source: { hash: string, size: number }, overrides?: Record<string, unknown>): Promise<JobView> {
  const answer = await apiRequest<JobView>(node, 'POST', '/api/jobs', { spec, source, ...(overrides !== undefined ? { overrides } : {}) })
  if (answer.status !== 201) throw new Error(`submitting a job answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  return answer.body
}

/** GET /api/jobs/<id> on one node; undefined while it does not know the job. */
export async function jobOn (node: NodeProcess, id: string): Promise<JobView | undefined> {
  const answer = await apiRequest<JobView>(node, 'GET', `/api/jobs/${id}`)
  if (answer.status === 404) return undefined
  if (answer.status !== 200) throw new Error(`GET /api/jobs/${id} answered ${answer.status}`)
  return answer.body
}

/** Wait until `node`'s view of the job satisfies `done`; returns that view. */
export async function waitForJob (node: NodeProcess, id: string, done: (job: JobView) => boolean, timeoutMs: number, what: string): Promise<JobView> {
  let last: JobView | undefined
  try {
    return await waitFor(async () => {
      last = await jobOn(node, id)
      return last !== undefined && done(last) ? last : undefined
    }, { timeoutMs, intervalMs: 100, what })
  } catch (err) {
    // Say where the job stood: which claims and results the node had seen.
    throw new Error(`${(err as Error).message}; the job was then ${last === undefined ? 'unknown to the node' : describeJob(last)}`, { cause: err })
  }
}

/** One line: verdict, and per platform the claims and results with their times relative to the job's. */
export function describeJob (job: JobView): string {
  const at = (t: number): string => `${t - job.time}ms`
  return `${job.verdict}${job.reason !== undefined ? ` (${job.reason})` : ''}: ` + job.platforms.map((p) =>
    `${p.selector} ${p.verdict} claims [${p.claims.map((c) => `${c.builder.slice(0, 6)}@${at(c.time)} lease ${at(c.lease)}`).join(', ')}] ` +
    `results [${p.results.map((r) => `${r.builder.slice(0, 6)} ${r.status}@${at(r.time)}`).join(', ')}]`).join('; ')
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
  await waitForMesh(nodes)
  return nodes
}

/** The author key (log name) of a node process. */
export function authorOf (node: NodeProcess): string {
  return node.ready.author
}

/**
 * From jobs' entries alone: how long each builder sat without a run while a
 * slot it could still take part in had an unclaimed place (work waiting).
 * A builder is busy from its claim to its result; a slot's unclaimed places
 * are its replicas minus the claims so far. Times are the authors' (one
 * machine, one clock). Returns ms per builder and the window in which any
 * place was waiting.
 */
export function idleWhileQueued (views: JobView[], builders: string[]): { perNode: Map<string, number>, longest: Map<string, number>, start: number, end: number } {
  const slots = views.flatMap((job) => job.platforms.map((p) => ({
    opened: job.time,
    replicas: p.replicas,
    claims: [...p.claims].sort((a, b) => a.time - b.time),
    results: p.results
  })))
  const busy = new Map(builders.map((b) => [b, [] as Array<[number, number]>]))
  for (const slot of slots) {
    for (const claim of slot.claims) {
      const result = slot.results.find((r) => r.builder === claim.builder)
      busy.get(claim.builder)?.push([claim.time, result?.time ?? claim.time])
    }
  }
  const times = [...new Set(slots.flatMap((s) => [s.opened, ...s.claims.map((c) => c.time), ...s.results.map((r) => r.time)]))].sort((a, b) => a - b)
  /** Unclaimed places at `t` in slots `builder` has not claimed (any builder when undefined). */
  const waiting = (t: number, builder?: string): number => {
    let places = 0
    for (const slot of slots) {
      if (slot.opened > t) continue
      const claimed = slot.claims.filter((c) => c.time <= t)
      if (builder !== undefined && claimed.some((c) => c.builder === builder)) continue
      places += Math.max(0, slot.replicas - new Set(claimed.map((c) => c.builder)).size)
    }
    return places
  }
  const perNode = new Map(builders.map((b) => [b, 0]))
  /** Longest stretch of idling while work waited, per builder, and the stretch in progress. */
  const longest = new Map(builders.map((b) => [b, 0]))
  const stretch = new Map(builders.map((b) => [b, 0]))
  let start = Infinity
  let end = -Infinity
  for (let i = 0; i + 1 < times.length; i++) {
    const [from, to] = [times[i]!, times[i + 1]!]
    const queued = waiting(from) > 0
    if (queued) {
      start = Math.min(start, from)
      end = Math.max(end, to)
    }
    for (const builder of builders) {
      const running = busy.get(builder)!.some(([s, e]) => s <= from && from < e)
      if (queued && !running && waiting(from, builder) > 0) {
        perNode.set(builder, perNode.get(builder)! + (to - from))
        stretch.set(builder, stretch.get(builder)! + (to - from))
        longest.set(builder, Math.max(longest.get(builder)!, stretch.get(builder)!))
      } else {
        stretch.set(builder, 0)
      }
    }
  }
  return { perNode, longest, start: Number.isFinite(start) ? start : 0, end: Number.isFinite(end) ? end : 0 }
}
