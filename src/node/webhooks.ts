import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { readFile, rename, stat, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import type { JobView } from '../jobs/index.js'
import { describeError, UsageError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'

const log = componentLogger('node:webhooks')

/**
 * Webhooks: a node posts each job's final verdict to the URLs in
 * `webhooks.json` in its home, as JSON signed with HMAC-SHA256 under each
 * hook's own secret, retrying with back-off from a bounded queue. The
 * payload is documented in docs/WEBHOOKS.md.
 */

export const WEBHOOKS_FILE = 'webhooks.json'
/** Hooks one node may have. */
export const MAX_HOOKS = 32
/** Deliveries waiting (across hooks); beyond it the oldest are dropped and counted. */
export const MAX_QUEUED_DELIVERIES = 1_000
/** Attempts per delivery: the first and then retries after 1, 2, 4, … s (at most MAX_BACKOFF_MS apart). */
export const MAX_ATTEMPTS = 8
export const FIRST_BACKOFF_MS = 1_000
export const MAX_BACKOFF_MS = 5 * 60_000
/** One attempt: connect, send, and the response's status. */
export const ATTEMPT_TIMEOUT_MS = 10_000
/** Deliveries in flight at once. */
const CONCURRENCY = 4

export const WEBHOOK_SCOPES = ['mine', 'all'] as const
export type WebhookScope = typeof WEBHOOK_SCOPES[number]

const hookSchema = z.strictObject({
  url: z.string().max(2048).refine((value) => {
    try {
      const url = new URL(value)
      return url.protocol === 'http:' || url.protocol === 'https:'
    } catch {
      return false
    }
  }, 'must be an http(s) URL'),
  secret: z.string().min(16).max(256),
  /** `mine`: jobs this node submitted or that a watch it added triggered; `all`: every job it sees decided. */
  scope: z.enum(WEBHOOK_SCOPES).default('mine')
})
const fileSchema = z.strictObject({ hooks: z.array(hookSchema).max(MAX_HOOKS) })

export type Webhook = z.infer<typeof hookSchema>

/** Read `webhooks.json`; a missing file is no hooks; a malformed one is a UsageError naming what is wrong. */
export async function readWebhooks (path: string): Promise<Webhook[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw new UsageError(`cannot read ${path}: ${describeError(err)}`)
  }
  if (text.length > 256 * 1024) throw new UsageError(`${path} is larger than 256 KiB; a webhooks file lists at most ${MAX_HOOKS} hooks`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`${path} is not JSON (${describeError(err)}); fix it or remove it`)
  }
  const parsed = fileSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new UsageError(`${path}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'is invalid'}; see docs/WEBHOOKS.md`)
  }
  return parsed.data.hooks
}

export async function writeWebhooks (path: string, hooks: Webhook[]): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, `${JSON.stringify({ hooks }, null, 2)}\n`, { mode: 0o600 })
  await rename(tmp, path)
}

/** A fresh secret: 32 random bytes, hex. */
export function newSecret (): string {
  return randomBytes(32).toString('hex')
}

/** `sha256=<hex>` of HMAC-SHA256(secret, body): the X-Buildhaus-Signature-256 header. */
export function signBody (secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`
}

/** What a verdict delivery carries (docs/WEBHOOKS.md). */
export interface VerdictPayload {
  event: 'verdict'
  /** Unique per delivery (the same on each retry): receivers drop repeats by it. */
  delivery: string
  /** When the node saw the verdict, ms since the epoch. */
  time: number
  node: { author: string }
  job: {
    id: string
    name: string
    submitter: string
    verdict: JobView['verdict']
    reason?: string
    platforms: Array<{ selector: string, verdict: string, reason?: string, agreeing: number, quorum: number, artifacts: Array<{ path: string, sha256: string, size: number }> }>
    trigger?: unknown
    upstream?: unknown
  }
}

export function verdictPayload (view: JobView, node: string, now = Date.now()): VerdictPayload {
  const spec = view.spec as JobView['spec'] & { trigger?: unknown, upstream?: unknown }
  return {
    event: 'verdict',
    delivery: randomUUID(),
    time: now,
    node: { author: node },
    job: {
      id: view.id,
      name: view.name,
      submitter: view.submitter,
      verdict: view.verdict,
      ...(view.reason !== undefined ? { reason: view.reason } : {}),
      platforms: view.platforms.map((p) => ({
        selector: p.selector,
        verdict: p.verdict,
        ...(p.reason !== undefined ? { reason: p.reason } : {}),
        agreeing: p.agreeing,
        quorum: p.quorum,
        artifacts: p.verdict === 'verified' ? (p.artifacts ?? []).map((a) => ({ path: a.path, sha256: a.sha256, size: a.size })) : []
      })),
      ...(spec.trigger !== undefined ? { trigger: spec.trigger } : {}),
      ...(spec.upstream !== undefined ? { upstream: spec.upstream } : {})
    }
  }
}

interface Delivery {
  hook: Webhook
  body: string
  delivery: string
  attempts: number
  due: number
}

export interface WebhookStats {
  delivered: number
  failed: number
  dropped: number
  retries: number
  queued: number
}

/**
 * The delivery queue: one POST per (hook, verdict), retried on network
 * errors, 429 and 5xx with exponential back-off, never more than
 * MAX_QUEUED_DELIVERIES waiting. Other 4xx answers are final (the receiver
 * refused it; retrying would not help).
 */
export class WebhookSender {
  private readonly queue: Delivery[] = []
  private inflight = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private running = false
  private readonly counters = { delivered: 0, failed: 0, dropped: 0, retries: 0 }
  private readonly backoffMs: number
  private readonly attemptTimeoutMs: number
  private readonly controller = new AbortController()

  constructor (options: { backoffMs?: number, attemptTimeoutMs?: number } = {}) {
    this.backoffMs = options.backoffMs ?? FIRST_BACKOFF_MS
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS
  }

  start (): void { this.running = true; this.pump() }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    this.controller.abort()
  }

  stats (): WebhookStats {
    return { ...this.counters, queued: this.queue.length + this.inflight }
  }

  send (hook: Webhook, payload: { delivery: string }): void {
    if (this.queue.length >= MAX_QUEUED_DELIVERIES) {
      this.queue.shift()
      this.counters.dropped++
      log.error('the webhook queue is full (%d); dropped the oldest delivery', MAX_QUEUED_DELIVERIES)
    }
    this.queue.push({ hook, body: JSON.stringify(payload), delivery: payload.delivery, attempts: 0, due: Date.now() })
    this.pump()
  }

  private pump (): void {
    if (!this.running) return
    clearTimeout(this.timer)
    const now = Date.now()
    while (this.inflight < CONCURRENCY) {
      const index = this.queue.findIndex((d) => d.due <= now)
      if (index < 0) break
      const [delivery] = this.queue.splice(index, 1)
      this.inflight++
      void this.attempt(delivery!).finally(() => { this.inflight--; this.pump() })
    }
    const next = Math.min(...this.queue.map((d) => d.due))
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => { this.pump() }, Math.max(0, next - now))
      this.timer.unref?.()
    }
  }

  private async attempt (d: Delivery): Promise<void> {
    d.attempts++
    let retry: boolean
    let why: string
    try {
      const response = await fetch(d.hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'buildhaus-webhook/1',
          'x-buildhaus-event': 'verdict',
          'x-buildhaus-delivery': d.delivery,
          'x-buildhaus-signature-256': signBody(d.hook.secret, d.body)
        },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.attemptTimeoutMs)])
      })
      await response.body?.cancel().catch(() => {})
      if (response.status >= 200 && response.status < 300) {
        this.counters.delivered++
        return
      }
      retry = response.status === 429 || response.status >= 500
      why = `HTTP ${response.status}`
    } catch (err) {
      if (!this.running) return
      retry = true
      why = describeError(err)
    }
    if (retry && d.attempts < MAX_ATTEMPTS && this.running) {
      this.counters.retries++
      d.due = Date.now() + Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** (d.attempts - 1))
      this.queue.push(d)
      log('delivery %s to %s failed (%s); attempt %d of %d in %d ms', d.delivery, d.hook.url, why, d.attempts + 1, MAX_ATTEMPTS, d.due - Date.now())
      return
    }
    this.counters.failed++
    log.error('gave up delivering %s to %s after %d attempts: %s', d.delivery, d.hook.url, d.attempts, why)
  }
}

const FINAL = new Set(['verified', 'failed', 'mismatch', 'cancelled'])

export interface WebhookNotifierParts {
  /** webhooks.json in the home; re-read when it changes. */
  file: string
  self: string
  jobs: {
    get (id: string): JobView | undefined
    foldedViews (): JobView[]
    on (type: 'job', listener: (event: CustomEvent<{ id: string }>) => void): () => void
  }
  /** Whether a job counts as this node's (submitted by it, or triggered by a watch it added). */
  isMine (view: JobView): boolean
  sender?: WebhookSender
}

/**
 * Watches the job service for verdicts that become final while the node
 * runs and hands one delivery per hook to the sender. Verdicts already final
 * at start are not posted again (nor are those reached while the node was down).
 */
export class WebhookNotifier {
  readonly sender: WebhookSender
  private readonly parts: WebhookNotifierParts
  private readonly notified = new Set<string>()
  private hooks: Webhook[] = []
  private mtime = -1
  private lastCheck = 0
  private off: (() => void) | undefined

  constructor (parts: WebhookNotifierParts) {
    this.parts = parts
    this.sender = parts.sender ?? new WebhookSender()
  }

  async start (): Promise<void> {
    await this.reload()
    for (const view of this.parts.jobs.foldedViews()) if (FINAL.has(view.verdict)) this.notified.add(view.id)
    this.off = this.parts.jobs.on('job', (event) => { void this.onJob(event.detail.id) })
    this.sender.start()
  }

  stop (): void {
    this.off?.()
    this.sender.stop()
  }

  private async reload (): Promise<void> {
    this.lastCheck = Date.now()
    const mtime = await stat(this.parts.file).then((s) => s.mtimeMs, () => 0)
    if (mtime === this.mtime) return
    this.mtime = mtime
    try {
      this.hooks = await readWebhooks(this.parts.file)
      log('%d webhooks from %s', this.hooks.length, this.parts.file)
    } catch (err) {
      log.error('webhooks not changed: %s', describeError(err))
    }
  }

  private async onJob (id: string): Promise<void> {
    const view = this.parts.jobs.get(id)
    if (view === undefined || !FINAL.has(view.verdict) || this.notified.has(id)) return
    this.notified.add(id)
    if (Date.now() - this.lastCheck > 1_000) await this.reload()
    const mine = this.parts.isMine(view)
    for (const hook of this.hooks) {
      if (hook.scope === 'mine' && !mine) continue
      this.sender.send(hook, verdictPayload(view, this.parts.self))
    }
  }
}
