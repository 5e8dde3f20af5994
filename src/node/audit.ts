import { EntryCodec, type DecodedEntry } from '../ledger/entry.js'
import { auditFile, type AuditReport } from '../ledger/index.js'
import { foldAll, jobEntryRules, type JobView, type TrustPolicy } from '../jobs/index.js'

/** One job's verdicts as the audit recomputed them. */
export interface AuditedJob {
  id: string
  name: string
  submitter: string
  verdict: JobView['verdict']
  reason?: string
  crossPlatform: JobView['crossPlatform']['verdict']
  platforms: Array<{ selector: string, verdict: string, agreeing: number, quorum: number, reason?: string, artifacts?: Array<{ path: string, sha256: string }> }>
}

export interface FullAuditReport {
  /** Signatures, ids, chains, forks and gaps: the log's own validity. */
  log: AuditReport
  /** Authors caught equivocating: listed, and not believed in the verdicts. */
  equivocating: string[]
  /** Whom the verdicts believe. */
  policy: { trusted: number | 'everyone', quorum: number | 'replicas' }
  jobs: AuditedJob[]
  /** Job views in full, for callers that need more than the summary (e.g. `verify --log`). */
  views: JobView[]
}

/**
 * Audit an export offline: check every line (signature, id, chain), then
 * recompute every job's verdicts from the valid entries with the same fold
 * the nodes use, under the auditor's own trust policy. Authors that forked
 * their chain are excluded, as a node excludes them.
 */
export async function auditExport (path: string, policy: TrustPolicy = {}): Promise<FullAuditReport> {
  const codec = new EntryCodec(jobEntryRules)
  const entries: DecodedEntry[] = []
  const log = await auditFile(path, codec, {
    onEntry: (entry, _line, problem) => { if (problem === undefined) entries.push(entry) }
  })
  const equivocating = [...new Set(log.forks.map((f) => f.author))].sort()
  const effective: TrustPolicy = { ...policy, excluded: new Set([...(policy.excluded ?? []), ...equivocating]) }
  const views = foldAll(entries, effective)
  return {
    log,
    equivocating,
    policy: { trusted: policy.trusted?.size ?? 'everyone', quorum: policy.quorum ?? 'replicas' },
    jobs: views.map(auditedJob),
    views
  }
}

function auditedJob (view: JobView): AuditedJob {
  return {
    id: view.id,
    name: view.name,
    submitter: view.submitter,
    verdict: view.verdict,
    ...(view.reason !== undefined ? { reason: view.reason } : {}),
    crossPlatform: view.crossPlatform.verdict,
    platforms: view.platforms.map((p) => ({
      selector: p.selector,
      verdict: p.verdict,
      agreeing: p.agreeing,
      quorum: p.quorum,
      ...(p.reason !== undefined ? { reason: p.reason } : {}),
      ...(p.artifacts !== undefined ? { artifacts: p.artifacts.map((a) => ({ path: a.path, sha256: a.sha256 })) } : {})
    }))
  }
}
