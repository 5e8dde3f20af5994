import { ENTRY_FORMAT_VERSION, MAX_ENTRY_BYTES } from '../../ledger/constants.js'
import { canonicalJson } from '../../util/canonical-json.js'
import { resultBodySchema, type ResultBody } from '../bodies.js'
import { MAX_REASON_LENGTH } from '../constants.js'
import { resultBodyAccepted } from '../fast-bodies.js'
import { describeIssues } from '../issues.js'

/**
 * A result must always be publishable: a build that leaves a file named
 * `a\nb`, or 256 artifacts with paths too long to fit one entry, must end as
 * an `error` result saying why, never as a result that cannot be signed
 * (the claim would lapse silently and the job be built again forever).
 */

/** The largest the envelope of a result entry can be: every counter at 2^53-1, keys, prev and sig in full. */
const ENVELOPE = canonicalJson({
  v: ENTRY_FORMAT_VERSION,
  author: '0'.repeat(64),
  seq: Number.MAX_SAFE_INTEGER,
  prev: '0'.repeat(64),
  clock: Number.MAX_SAFE_INTEGER,
  time: Number.MAX_SAFE_INTEGER,
  type: 'result',
  body: {},
  sig: '0'.repeat(128)
})

/** The size in bytes a result entry with this body can reach, whatever its chain position. */
export function resultEntryBytes (body: ResultBody): number {
  return Buffer.byteLength(ENVELOPE) - 2 + Buffer.byteLength(canonicalJson(body))
}

/** Why this body could not be published, in one sentence with no host path; undefined when it can. */
export function unpublishableReason (body: ResultBody): string | undefined {
  // The hand-written check answers true only where the schema would (fast-bodies.ts), in a fraction of
  // its time: the common result skips the schema, which took ~0.4 ms between a build's end and its result.
  const parsed = resultBodyAccepted(body) ? undefined : resultBodySchema.safeParse(body, { reportInput: true })
  if (parsed !== undefined && !parsed.success) {
    const issue = parsed.error.issues[0]
    const [field, index] = issue?.path ?? []
    const named = field === 'artifacts' && typeof index === 'number' && body.artifacts[index] !== undefined
      ? ` (the artifact ${JSON.stringify(body.artifacts[index].path).slice(0, 200)})`
      : ''
    return `the result could not be published: ${describeIssues(parsed.error)}${named}`
  }
  const bytes = resultEntryBytes(body)
  if (bytes > MAX_ENTRY_BYTES) {
    const longest = Math.max(0, ...body.artifacts.map((a) => a.path.length))
    return `the result could not be published: its entry would be ${bytes} bytes, over the ${MAX_ENTRY_BYTES}-byte limit of a log entry ` +
      `(${body.artifacts.length} artifacts, paths up to ${longest} characters); collect fewer files or shorter paths`
  }
  return undefined
}

/**
 * The body to publish: `body` itself when it can be, else an `error` result
 * with the reason and no artifacts (keeping the steps, log and environment
 * when they are valid, dropping them when they are the problem).
 */
export function publishableResult (body: ResultBody): ResultBody {
  const problem = unpublishableReason(body)
  if (problem === undefined) return body
  return errorInstead(body, problem)
}

/** An `error` result for `body`'s slot saying `reason`: always publishable. */
export function errorInstead (body: ResultBody, reason: string): ResultBody {
  const text = reason.slice(0, MAX_REASON_LENGTH)
  // Only a pass with artifacts carries a provenance signature: an error result has none.
  const { provenance: _signed, ...rest } = body
  const kept: ResultBody = { ...rest, status: 'error', reason: text, artifacts: [] }
  if (unpublishableReason(kept) === undefined) return kept
  return {
    job: body.job,
    platform: body.platform,
    status: 'error',
    reason: text,
    steps: [],
    log: null,
    logSize: 0,
    artifacts: [],
    env: { os: 'unknown', kernel: 'unknown', arch: 'unknown', sandbox: 'unknown', tools: {} },
    start: Math.max(0, Math.min(body.start, body.end)),
    end: Math.max(0, body.end, body.start)
  }
}
