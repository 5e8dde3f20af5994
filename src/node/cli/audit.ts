import { EntryCodec, entryIdOf, unsignedOf, type CheckedEntry, type DecodedEntry, type EntryBody } from '../../ledger/entry.js'
// The modules themselves, not the layers' index.ts: those would load the node (gossipsub, the sandbox, environments) into a command that only reads a file.
import { auditFile, type AuditProblem, type AuditReport, type SignatureMode } from '../../ledger/audit.js'
import { readExportFile } from '../../ledger/export.js'
import type { BatchVerifier } from '../../ledger/verify-pool.js'
import { platformDecidedAt } from '../../jobs/artifact-lookup.js'
import { jobEntryRules } from '../../jobs/bodies.js'
import { computeReputation, type BuilderReputation } from '../../jobs/reputation.js'
import { foldAll } from '../../jobs/state.js'
import type { TrustPolicy } from '../../jobs/trust.js'
import { jobHeadline, platformHeadline, type JobView, type PlatformView } from '../../jobs/view.js'
import type { MeshDefinition } from '../../membership/definition.js'
import { foldMembership, type MembershipView } from '../../membership/fold.js'

/** One builder's latest say on a platform, as the audit weighed it. */
export interface AuditedResult {
  builder: string
  status: string
  /** The auditor's policy believes this builder. */
  trusted: boolean
  /** It was one of the platform's votes (the builder's latest non-refused result, and trusted). */
  counted: boolean
  /** In the deciding group; null while nothing decided. */
  agrees: boolean | null
  artifacts: Array<{ path: string, sha256: string, size: number }>
  /** The builder's clock when it published (not checked by anyone). */
  time: number
  entry: string
}

export interface AuditedPlatform {
  selector: string
  verdict: PlatformView['verdict']
  reason?: string
  replicas: number
  quorum: number
  agreeing: number
  /** When the verdict was reached, by the builders' clocks (absent while pending). */
  since?: number
  /** The deciding group's artifacts (verified or failed). */
  artifacts?: Array<{ path: string, sha256: string, size: number }>
  mismatch?: PlatformView['mismatch']
  /** Each builder's latest non-refused result (older ones and refusals never vote). */
  results: AuditedResult[]
}

/** One job's verdicts as the audit recomputed them. */
export interface AuditedJob {
  id: string
  name: string
  submitter: string
  /** The submitter's clock at submission. */
  time: number
  verdict: JobView['verdict']
  reason?: string
  /** When the job reached its verdict, by the builders' clocks (absent while pending or cancelled). */
  since?: number
  crossPlatform: JobView['crossPlatform']['verdict']
  crossPlatformReason?: string
  platforms: AuditedPlatform[]
  diagnoses: Array<{ platform: string, report: string, summary: string, files: string[], builders: string[], author: string, time: number }>
}

/** What a problem line says about itself. For a line that failed its checks, these are claims, not facts. */
export interface ProblemContext {
  line: number
  author?: string
  seq?: number
  type?: string
  time?: number
}

/** Where an author's chain stops being provable. */
export interface ChainBreak {
  author: string
  /** The first line with a problem for this author. */
  line: number
  kind: AuditProblem['kind']
  /** The author's last entry before the break that links correctly from seq 0; null if none does. */
  provenUpTo: { seq: number, line: number, time: number } | null
}

/** One side of a proven fork, as the export holds it. */
export interface ForkSide {
  line: number
  id: string
  type: string
  clock: number
  time: number
  /** The whole entry line, as signed. */
  entry: string
}

/** A proven fork: the author, the seq, and both entries. */
export interface ShownFork {
  author: string
  seq: number
  entries: [ForkSide, ForkSide]
}

export interface FullAuditReport {
  file: string
  /** Signatures, ids, chains, forks and gaps: the log's own validity. */
  log: AuditReport
  /** What each listed problem's line claims (author, seq, type, time), for saying what broke and since when. */
  problemContext: ProblemContext[]
  /** Per author with a problem, how far its chain is proven. */
  breaks: ChainBreak[]
  /** Authors caught equivocating: listed, and not believed in the verdicts. */
  equivocating: string[]
  /** Each proven fork with both of its entries (at most MAX_SHOWN_FORKS). */
  forks: ShownFork[]
  /** Authors that revoked their key: the seq and line of the revoke; what they wrote after it counts for nothing. */
  revoked: Array<{ author: string, seq: number, line: number, ignored: number }>
  /**
   * The mesh's membership recomputed from this log's vouches (when the
   * caller gave a mesh definition): who is a member by whose vouches, and
   * whether the verdicts count the members (`counts`) or another policy.
   */
  membership?: MembershipView & { file: string, counts: boolean }
  /** Whom the verdicts believe. */
  policy: {
    /** `members`: the mesh's members; `list`: the reader's trust list; `everyone`. */
    basis: 'members' | 'list' | 'everyone'
    trusted: number | 'everyone'
    trustedKeys?: string[]
    /** Never believed: the caller's exclusions and the equivocating authors. */
    excluded: string[]
    quorum: number | 'replicas'
  }
  /** Correctly signed entries the verdicts were computed from. */
  entriesUsed: number
  verdicts: Record<string, number>
  jobs: AuditedJob[]
  /** Each builder's agreement with the decided verdicts, under this policy. */
  reputation: BuilderReputation[]
  /** Job views in full, for callers that need more than the summary (e.g. `verify --log`). */
  views: JobView[]
}

export interface AuditExportOptions {
  /** Signature checks (default: the shared worker pool). */
  verifier?: BatchVerifier
  /**
   * Recompute the mesh's membership from the log's vouches (as a node does)
   * and, with `counts`, believe exactly its members: the reader's default.
   * Without it the policy alone decides (absent `trusted`: everyone).
   */
  membership?: { definition: MeshDefinition, file: string, counts: boolean }
  /**
   * The file is a slice of a log (a release's log.ndjson), not a whole
   * export: authors' chains may have gaps (the rest of their logs), which
   * are then not problems. Every other check stands.
   */
  slice?: boolean
  /**
   * `every` (default): each line's own; `chain`: those the chains' links do
   * not vouch for, and every one once one of those fails (docs/FORMAT.md §9).
   */
  signatures?: SignatureMode
  /** Told now and then how far the reading is (see AuditOptions.onProgress), and when a bad signature makes the audit start again. */
  progress?: { lines: (lines: number, bytes: number) => void, restart: () => void }
}

/**
 * Audit an export offline: check every line (signature, id, chain), then
 * recompute every job's verdicts with the same fold the nodes use, under the
 * auditor's own trust policy. Every correctly signed entry counts as its
 * author's word, even one out of place in its chain (a gap before it, a
 * duplicate): its signature proves who wrote it, and the chain problem is
 * reported beside the verdicts. Lines that fail their checks count for
 * nothing, and authors that forked their chain are excluded, as a node
 * excludes them.
 */
export async function auditExport (path: string, policy: TrustPolicy = {}, options: AuditExportOptions = {}): Promise<FullAuditReport> {
  const codec = new EntryCodec(jobEntryRules)
  let entries: CheckedEntry[] = []
  let lines: number[] = []
  const keep = compactKeeper()
  const log = await auditFile(path, codec, {
    ...(options.verifier !== undefined ? { verifier: options.verifier } : {}),
    signatures: options.signatures ?? 'every',
    onEntry: (entry, line) => {
      entries.push(keep(entry))
      lines.push(line)
    },
    ...(options.progress !== undefined ? { onProgress: options.progress.lines } : {}),
    // A bad signature was found: the file is read again with every signature checked.
    onRestart: () => {
      entries = []
      lines = []
      options.progress?.restart()
    }
  })
  if (options.slice === true) {
    // A slice leaves out whatever does not concern its job: gaps are expected there.
    const gaps = log.problems.filter((p) => p.kind === 'gap')
    log.problems = log.problems.filter((p) => p.kind !== 'gap')
    log.problemCount -= gaps.length
    log.invalidCount -= gaps.filter((p) => p.excused === undefined).length
    log.valid = log.invalidCount === 0
  }
  const equivocating = log.equivocating
  const excluded = new Set([...(policy.excluded ?? []), ...equivocating])
  let effective: TrustPolicy = { ...policy, excluded }
  let membership: FullAuditReport['membership']
  if (options.membership !== undefined) {
    const view = foldMembership(options.membership.definition, entries, { forked: equivocating })
    membership = { ...view, file: options.membership.file, counts: options.membership.counts }
    if (options.membership.counts) effective = { ...effective, trusted: new Set(view.members.map((m) => m.key)), basis: 'members' }
  }
  const views = foldAll(entries, effective)
  const jobs = views.map(auditedJob)
  const verdicts: Record<string, number> = {}
  for (const job of jobs) verdicts[job.verdict] = (verdicts[job.verdict] ?? 0) + 1
  return {
    file: path,
    log,
    problemContext: log.problems.length > 0 ? await contextOf(path, log.problems) : [],
    breaks: chainBreaks(log.problems.filter((p) => p.excused === undefined), entries, lines),
    equivocating,
    forks: log.forks.length > 0 ? await forksOf(path, log.forks) : [],
    revoked: log.ended.map((e) => ({ ...e, ignored: entries.filter((x) => x.entry.author === e.author && x.entry.seq > e.seq).length })),
    ...(membership !== undefined ? { membership } : {}),
    policy: {
      basis: effective.trusted === undefined ? 'everyone' : effective.basis === 'members' ? 'members' : 'list',
      trusted: effective.trusted?.size ?? 'everyone',
      ...(effective.trusted !== undefined ? { trustedKeys: [...effective.trusted].sort() } : {}),
      excluded: [...excluded].sort(),
      quorum: policy.quorum ?? 'replicas'
    },
    entriesUsed: entries.length,
    verdicts,
    jobs,
    reputation: computeReputation(views),
    views
  }
}

/**
 * A checked entry as the folds need it (CheckedEntry), in one object: the
 * audit holds every entry of the log until the folds, and each object and
 * string kept is copied by the collector as it ages and marked at every full
 * collection. Its signature, prev link, version and line were checked and
 * are not read again.
 */
class AuditedEntry implements CheckedEntry {
  constructor (
    readonly id: string,
    readonly author: string,
    readonly seq: number,
    readonly clock: number,
    readonly time: number,
    readonly type: string,
    readonly body: EntryBody
  ) {}

  get entry (): this {
    return this
  }
}

/** Make AuditedEntry records, sharing one string per author (a log has few authors and many entries). */
function compactKeeper (): (decoded: DecodedEntry) => AuditedEntry {
  const authors = new Map<string, string>()
  return ({ entry, id }) => {
    let author = authors.get(entry.author)
    if (author === undefined) {
      author = entry.author
      authors.set(author, author)
    }
    return new AuditedEntry(id, author, entry.seq, entry.clock, entry.time, entry.type, entry.body)
  }
}

/** When a job reached its verdict: the last platform to be verified, or the first to fail or mismatch. */
function jobSince (view: JobView, platforms: AuditedPlatform[]): number | undefined {
  const times = (verdict: string): number[] => platforms.filter((p) => p.verdict === verdict && p.since !== undefined).map((p) => p.since!)
  switch (view.verdict) {
    case 'verified': {
      const all = times('verified')
      return all.length === platforms.length ? Math.max(...all) : undefined
    }
    case 'mismatch': {
      const mismatching = times('mismatch')
      if (mismatching.length > 0) return Math.min(...mismatching)
      const verified = times('verified')
      return verified.length > 0 ? Math.max(...verified) : undefined
    }
    case 'failed': {
      const failing = times('failed')
      return failing.length > 0 ? Math.min(...failing) : undefined
    }
    default:
      return undefined
  }
}

function auditedJob (view: JobView): AuditedJob {
  const platforms = view.platforms.map(auditedPlatform)
  const since = jobSince(view, platforms)
  return {
    ...jobHeadline(view),
    ...(since !== undefined ? { since } : {}),
    crossPlatform: view.crossPlatform.verdict,
    ...(view.crossPlatform.reason !== undefined ? { crossPlatformReason: view.crossPlatform.reason } : {}),
    platforms,
    diagnoses: view.diagnoses.map((d) => ({ platform: d.platform, report: d.report, summary: d.summary, files: d.files, builders: d.builders, author: d.author, time: d.time }))
  }
}

function auditedPlatform (p: PlatformView): AuditedPlatform {
  const since = platformDecidedAt(p)
  return {
    ...platformHeadline(p),
    ...(since !== undefined ? { since } : {}),
    ...(p.artifacts !== undefined ? { artifacts: p.artifacts.map((a) => ({ path: a.path, sha256: a.sha256, size: a.size })) } : {}),
    ...(p.mismatch !== undefined ? { mismatch: p.mismatch } : {}),
    results: p.results.filter((r) => r.latest).map((r) => ({
      builder: r.builder,
      status: r.status,
      trusted: r.trusted,
      counted: r.counted,
      agrees: r.agrees,
      artifacts: r.artifacts.map((a) => ({ path: a.path, sha256: a.sha256, size: a.size })),
      time: r.time,
      entry: r.entry
    }))
  }
}

/**
 * Per author with a problem: the first problem line, and the last entry before
 * it whose chain links from seq 0 (what can still be relied on).
 */
function chainBreaks (problems: readonly AuditProblem[], entries: readonly CheckedEntry[], lines: readonly number[]): ChainBreak[] {
  const first = new Map<string, AuditProblem>()
  for (const p of problems) if (p.author !== undefined && !first.has(p.author)) first.set(p.author, p)
  if (first.size === 0) return []
  const proven = new Map<string, { seq: number, line: number, time: number }>()
  for (let i = 0; i < entries.length; i++) {
    const { author, seq, time } = entries[i]!.entry
    const broken = first.get(author)
    if (broken === undefined || lines[i]! >= broken.line) continue
    const last = proven.get(author)
    // Entries before the first problem link up by construction; keep the highest.
    if (last === undefined || seq > last.seq) proven.set(author, { seq, line: lines[i]!, time })
  }
  return [...first.values()].map((p) => ({ author: p.author!, line: p.line, kind: p.kind, provenUpTo: proven.get(p.author!) ?? null }))
}

/** Forks shown with both entries; more are counted in `log.forks`. */
export const MAX_SHOWN_FORKS = 100

/** The export's lines numbered in `wanted` (1-based), as text (bad UTF-8 replaced), in order; reading stops after the last. */
async function * linesOf (path: string, wanted: ReadonlySet<number>): AsyncGenerator<{ line: number, text: string }> {
  const last = Math.max(...wanted)
  const decoder = new TextDecoder('utf-8', { fatal: false })
  let line = 0
  for await (const raw of readExportFile(path)) {
    line++
    if (line > last) break
    if (wanted.has(line)) yield { line, text: decoder.decode(raw) }
  }
}

/** Read back the two lines of each proven fork (the audit streams the export and keeps no lines). */
async function forksOf (path: string, forks: ReadonlyArray<{ author: string, seq: number, lines: [number, number] }>): Promise<ShownFork[]> {
  const shown = forks.slice(0, MAX_SHOWN_FORKS)
  const wanted = new Set(shown.flatMap((f) => f.lines))
  const sides = new Map<number, ForkSide>()
  for await (const { line, text } of linesOf(path, wanted)) {
    const entry = JSON.parse(text) as { type: string, clock: number, time: number }
    sides.set(line, { line, id: entryIdOf(unsignedOf(text)), type: entry.type, clock: entry.clock, time: entry.time, entry: text })
  }
  return shown.map((f) => ({ author: f.author, seq: f.seq, entries: [sides.get(f.lines[0])!, sides.get(f.lines[1])!] }))
}

/**
 * What the problem lines say about themselves: read them again and take
 * author, seq, type and time from whatever JSON they hold. Only the listed
 * problems' lines are looked at.
 */
async function contextOf (path: string, problems: readonly AuditProblem[]): Promise<ProblemContext[]> {
  const found: ProblemContext[] = []
  for await (const { line, text } of linesOf(path, new Set(problems.map((p) => p.line)))) {
    const context: ProblemContext = { line }
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>
      if (typeof parsed.author === 'string' && /^[0-9a-f]{64}$/.test(parsed.author)) context.author = parsed.author
      if (Number.isSafeInteger(parsed.seq)) context.seq = parsed.seq as number
      if (typeof parsed.type === 'string' && parsed.type.length <= 32) context.type = parsed.type
      if (Number.isSafeInteger(parsed.time)) context.time = parsed.time as number
    } catch {}
    found.push(context)
  }
  return found
}
