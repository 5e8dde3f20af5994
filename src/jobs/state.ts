import type { CheckedEntry } from '../ledger/entry.js'
import { InvalidInputError } from '../util/errors.js'
import { JOB_REFERRING_TYPES, type CancelBody, type ClaimBody, type DiagnosisBody, type JobBody, type ResultBody } from './bodies.js'
import { checkTrustPolicy, isTrusted, quorumFor, type TrustPolicy } from './trust.js'
import { describeEnvironments } from './environment-differences.js'
import { crossCheck, decidePlatform, jobVerdict, outcomeKey, shortKey, type Ballot } from './verdict.js'
import type { ClaimView, DiagnosisView, JobView, LivenessNote, PlatformView, ResultView } from './view.js'

/**
 * The fold: a job's state is a pure function of its `job` entry, the entries
 * that refer to it, and the reader's trust policy. Entries are put in one
 * canonical order first (Lamport clock, author, seq, id), so the same entries
 * in any order give byte-identical JSON. Bodies are trusted to have passed
 * the codec's jobEntryRules; the fold only sorts, filters and counts.
 */

/** The canonical fold order: Lamport clock, then author, then seq, then id. */
export function compareEntries (a: CheckedEntry, b: CheckedEntry): number {
  return a.entry.clock - b.entry.clock ||
    cmp(a.entry.author, b.entry.author) ||
    a.entry.seq - b.entry.seq ||
    cmp(a.id, b.id)
}

function cmp (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Authors with two different entries at the same seq among `entries`: proven equivocators. */
function forkedAuthors (entries: readonly CheckedEntry[]): Set<string> {
  const seen = new Map<string, string>()
  const forked = new Set<string>()
  for (const e of entries) {
    const slot = `${e.entry.author}/${e.entry.seq}`
    const other = seen.get(slot)
    if (other !== undefined && other !== e.id) forked.add(e.entry.author)
    seen.set(slot, e.id)
  }
  return forked
}

/** What a failed result says about itself in a few words. */
function failureDetail (result: ResultBody): string | undefined {
  if (result.reason !== undefined) return result.reason
  const step = result.steps.find((s) => s.exit !== 0)
  if (step === undefined) return undefined
  if (step.exit !== null) return `step "${step.name}" exited ${step.exit}`
  return `step "${step.name}" ${step.signal !== undefined ? `was killed by ${step.signal}` : 'did not finish'}`
}

interface PlatformAcc {
  claims: ClaimView[]
  results: Array<{ view: ResultView, seq: number, id: string, body: ResultBody }>
}

function resultView (e: CheckedEntry, body: ResultBody, trusted: boolean): ResultView {
  return {
    builder: e.entry.author,
    status: body.status,
    ...(body.reason !== undefined ? { reason: body.reason } : {}),
    steps: body.steps,
    log: body.log,
    logSize: body.logSize,
    artifacts: body.artifacts,
    env: body.env,
    ...(body.environment !== undefined ? { environment: body.environment } : {}),
    start: body.start,
    end: body.end,
    time: e.entry.time,
    entry: e.id,
    ...(body.provenance !== undefined ? { provenance: body.provenance } : {}),
    trusted,
    latest: false,
    counted: false,
    agrees: null
  }
}

/** For a mismatch: what the disagreeing groups' environments say (one result per group). */
function mismatchEnvironments (decision: ReturnType<typeof decidePlatform>, latest: ReadonlyMap<string, PlatformAcc['results'][number]>, requested: readonly string[]): string | undefined {
  const groups = decision.mismatch?.groups
  if (groups === undefined) return undefined
  const sides = groups.flatMap((group) => {
    const result = latest.get(group.builders[0]!)
    return result === undefined ? [] : [{ label: shortKey(result.view.builder), ...(result.body.environment !== undefined ? { environment: result.body.environment } : {}) }]
  })
  return describeEnvironments(sides, requested)
}

function foldPlatform (platform: JobBody['platforms'][number], acc: PlatformAcc, policy: TrustPolicy, requested: readonly string[]): PlatformView {
  const quorum = quorumFor(policy, platform.replicas)
  // Each builder votes once: its latest non-refused result, by its own seq.
  const latest = new Map<string, PlatformAcc['results'][number]>()
  for (const r of acc.results) {
    if (r.body.status === 'refused') continue
    const held = latest.get(r.view.builder)
    if (held === undefined || r.seq > held.seq || (r.seq === held.seq && r.id > held.id)) latest.set(r.view.builder, r)
  }
  const ballots: Ballot[] = []
  let untrusted = 0
  for (const r of latest.values()) {
    r.view.latest = true
    if (!r.view.trusted) { untrusted++; continue }
    r.view.counted = true
    const detail = failureDetail(r.body)
    ballots.push({ builder: r.view.builder, status: r.body.status, artifacts: r.body.artifacts, ...(detail !== undefined ? { detail } : {}) })
  }
  const decision = decidePlatform(ballots, platform.replicas, quorum)
  if (decision.decidingKey !== undefined) {
    for (const r of latest.values()) r.view.agrees = outcomeKey(r.body.status, r.body.artifacts) === decision.decidingKey
  }
  let reason = decision.reason
  if (decision.verdict === 'mismatch') {
    const environments = mismatchEnvironments(decision, latest, requested)
    if (environments !== undefined) reason = `${reason ?? 'builders disagree'}; ${environments}`
  }
  if (decision.verdict === 'pending') {
    reason = ballots.length === 0
      ? `no ${policy.basis === 'members' ? 'members\'' : 'trusted'} results yet (${quorum} agreeing needed)`
      : `${decision.agreeing} of ${quorum} agreeing results`
    if (untrusted > 0) reason += `; ${untrusted} from ${policy.basis === 'members' ? 'non-members' : 'untrusted builders'} not counted`
  }
  const deciding = decision.decided === undefined ? undefined : latest.get(decision.decided.builders[0]!)?.body.environment
  return {
    selector: platform.selector,
    labels: platform.labels,
    replicas: platform.replicas,
    ...(platform.environment !== undefined ? { environment: platform.environment } : {}),
    ...(deciding !== undefined ? { decidedEnvironment: deciding } : {}),
    quorum,
    verdict: decision.verdict,
    ...(reason !== undefined ? { reason } : {}),
    agreeing: decision.agreeing,
    ...(decision.decided !== undefined ? { artifacts: decision.decided.artifacts } : {}),
    claims: acc.claims,
    results: acc.results.map((r) => r.view),
    ...(decision.mismatch !== undefined ? { mismatch: decision.mismatch } : {})
  }
}

/**
 * Fold one job. `related` may hold anything: only claim, result, cancel and
 * diagnosis entries naming this job count (duplicates are dropped), and
 * claims, results and diagnoses for a platform the job does not have are
 * listed in `entries` but change nothing. Only the submitter can cancel.
 */
export function foldJob (job: CheckedEntry, related: Iterable<CheckedEntry>, policy: TrustPolicy = {}): JobView {
  if (job.entry.type !== 'job') throw new InvalidInputError(`entry ${job.id} is a ${job.entry.type}, not a job`)
  checkTrustPolicy(policy)
  const body = job.entry.body as unknown as JobBody
  const submitter = job.entry.author

  const unique = new Map<string, CheckedEntry>()
  for (const e of related) {
    if (!JOB_REFERRING_TYPES.has(e.entry.type) || e.entry.body.job !== job.id) continue
    unique.set(e.id, e)
  }
  const ordered = [...unique.values()].sort(compareEntries)
  const forked = forkedAuthors(ordered)
  const trusts = (builder: string): boolean => !forked.has(builder) && isTrusted(policy, builder)

  const accs = new Map<string, PlatformAcc>(body.platforms.map((p) => [p.selector, { claims: [], results: [] }]))
  const diagnoses: DiagnosisView[] = []
  let cancelled = false
  let cancelReason: string | undefined
  for (const e of ordered) {
    const { author, type } = e.entry
    if (type === 'cancel') {
      if (author === submitter && !cancelled) {
        cancelled = true
        cancelReason = (e.entry.body as unknown as CancelBody).reason
      }
      continue
    }
    if (type === 'claim') {
      const claim = e.entry.body as unknown as ClaimBody
      accs.get(claim.platform)?.claims.push({ builder: author, lease: claim.lease, time: e.entry.time, entry: e.id, trusted: trusts(author) })
    } else if (type === 'result') {
      const result = e.entry.body as unknown as ResultBody
      accs.get(result.platform)?.results.push({ view: resultView(e, result, trusts(author)), seq: e.entry.seq, id: e.id, body: result })
    } else if (type === 'diagnosis') {
      const d = e.entry.body as unknown as DiagnosisBody
      if (accs.has(d.platform)) {
        diagnoses.push({ platform: d.platform, ...(d.versus !== undefined && accs.has(d.versus) ? { versus: d.versus } : {}), report: d.report, summary: d.summary, builders: d.builders, files: d.files, author, time: e.entry.time, entry: e.id })
      }
    }
  }

  const platforms = body.platforms.map((p) => foldPlatform(p, accs.get(p.selector)!, policy, body.packages ?? []))
  const crossPlatform = crossCheck(platforms, body.independent, body.packages ?? [])
  const { verdict, reason } = jobVerdict({ cancelled, ...(cancelReason !== undefined ? { cancelReason } : {}), platforms, crossPlatform })
  return {
    id: job.id,
    name: body.name,
    submitter,
    time: job.entry.time,
    clock: job.entry.clock,
    source: body.source,
    sourceSize: body.sourceSize,
    spec: body,
    cancelled,
    ...(cancelReason !== undefined ? { cancelReason } : {}),
    verdict,
    ...(reason !== undefined ? { reason } : {}),
    platforms,
    crossPlatform,
    diagnoses,
    entries: [job.id, ...ordered.map((e) => e.id)]
  }
}

/**
 * Per author that revoked its key, the seq of its (first) revoke: nothing it
 * wrote after that counts. A node's store refuses such entries outright; an
 * export may still hold them (a key used after its revoke), and the fold
 * ignores them there too, so node and audit agree.
 */
export function revokedAt (entries: Iterable<CheckedEntry>): Map<string, number> {
  const ended = new Map<string, number>()
  for (const e of entries) {
    if (e.entry.type !== 'revoke') continue
    const seen = ended.get(e.entry.author)
    if (seen === undefined || e.entry.seq < seen) ended.set(e.entry.author, e.entry.seq)
  }
  return ended
}

/** Whether `e` was written after its author's revoke (see revokedAt). */
export function afterRevoke (ended: ReadonlyMap<string, number>, e: CheckedEntry): boolean {
  const at = ended.get(e.entry.author)
  return at !== undefined && e.entry.seq > at
}

/**
 * Fold every job in a set of entries (an export, a whole store), in fold
 * order of the job entries. Entries of other types, or referring to a job
 * not among them, are ignored, and so is every entry an author wrote after
 * its revoke.
 */
export function foldAll (entries: Iterable<CheckedEntry>, policy: TrustPolicy = {}): JobView[] {
  const jobs = new Map<string, CheckedEntry>()
  const related = new Map<string, CheckedEntry[]>()
  const all = [...entries]
  const ended = revokedAt(all)
  for (const e of all) {
    if (afterRevoke(ended, e)) continue
    if (e.entry.type === 'job') {
      jobs.set(e.id, e)
    } else if (JOB_REFERRING_TYPES.has(e.entry.type) && typeof e.entry.body.job === 'string') {
      const list = related.get(e.entry.body.job)
      if (list === undefined) related.set(e.entry.body.job, [e])
      else list.push(e)
    }
  }
  return [...jobs.values()].sort(compareEntries).map((job) => foldJob(job, related.get(job.id) ?? [], policy))
}

/**
 * Overlay what only live presence knows on a folded view: a pending platform
 * that no live node can take becomes `unmatched` with the reason, or stays
 * pending with a reason (`queued: …`). Decided platforms are left alone.
 * Returns a new view; the input is not changed.
 */
export function withLiveness (view: JobView, explain: (platform: PlatformView) => LivenessNote | undefined): JobView {
  const platforms = view.platforms.map((platform) => {
    if (platform.verdict !== 'pending') return platform
    const note = explain(platform)
    return note === undefined ? platform : { ...platform, verdict: note.verdict, reason: note.reason }
  })
  const { verdict, reason } = jobVerdict({
    cancelled: view.cancelled,
    ...(view.cancelReason !== undefined ? { cancelReason: view.cancelReason } : {}),
    platforms,
    crossPlatform: view.crossPlatform
  })
  const { reason: _old, ...rest } = view
  return { ...rest, verdict, ...(reason !== undefined ? { reason } : {}), platforms }
}
