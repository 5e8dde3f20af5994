import { z } from 'zod'
import type { EntryBody, EntryTypeRules } from '../ledger/entry.js'
import {
  MAX_DIAGNOSIS_BUILDERS, MAX_DIAGNOSIS_FILES, MAX_CPU_SECONDS, MAX_DISK_MB, MAX_ENV_FIELD_LENGTH, MAX_ENV_TOOLS,
  MAX_GLOB_LENGTH, MAX_GLOBS, MAX_JOB_NAME_LENGTH, MAX_LABELS_PER_SELECTOR, MAX_MEMORY_MB, MAX_PATH_LENGTH,
  MAX_PLATFORMS, MAX_PROCESSES, MAX_REASON_LENGTH, MAX_REPLICAS, MAX_RESULT_ARTIFACTS, MAX_SELECTOR_LENGTH,
  MAX_SIGNAL_LENGTH, MAX_STEP_NAME_LENGTH, MAX_STEP_RUN_LENGTH, MAX_STEPS, MAX_SUMMARY_LENGTH, MAX_TIMEOUT_S,
  MAX_TOOL_NAME_LENGTH, MIN_TIMEOUT_S
} from './constants.js'
import { describeIssues } from './issues.js'
import { labelProblem, parseSelector } from './selector.js'

/**
 * The bodies of the entry types the jobs layer defines, and the rules table the
 * ledger's EntryCodec takes. Bodies are strict (an unknown field is refused: an
 * independent verifier must know every signed byte's meaning) and hold
 * integers only: times in ms since the epoch, durations in ms, sizes in bytes,
 * the job's timeout in seconds.
 */

export const RESULT_STATUSES = ['pass', 'fail', 'timeout', 'error', 'refused'] as const
export type ResultStatus = typeof RESULT_STATUSES[number]

const HEX64 = /^[0-9a-f]{64}$/
// Control characters would let a name forge lines in logs and terminals.
// eslint-disable-next-line no-control-regex -- matching them is the point
const CONTROL = /[\u0000-\u001f\u007f]/

const sha256 = z.string().regex(HEX64, 'must be a sha256 (64 lower-case hex digits)')
const entryId = z.string().regex(HEX64, 'must be an entry id (64 lower-case hex digits)')
const authorKey = z.string().regex(HEX64, 'must be a public key (64 lower-case hex digits)')
const count = z.int().min(0)

function line (max: number): z.ZodString {
  // eslint-disable-next-line no-control-regex -- refusing them is the point
  return z.string().min(1).max(max).regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
}

function text (max: number): z.ZodString {
  return z.string().min(1).max(max)
}

/** Why `path` is not a safe relative path (artifact path or glob), or undefined. */
export function relativePathProblem (path: string): string | undefined {
  if (CONTROL.test(path)) return 'must not contain control characters'
  if (path.startsWith('/')) return 'must be relative (no leading "/")'
  if (path.includes('\\')) return 'must use "/" as separator'
  const parts = path.split('/')
  if (parts.includes('..')) return 'must not contain ".." segments'
  if (parts.some((part) => part === '' || part === '.')) return 'must not contain empty or "." segments'
  return undefined
}

function pathLike (max: number) {
  return z.string().min(1).max(max).superRefine((value, ctx) => {
    const problem = relativePathProblem(value)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
  })
}

export const globSchema = pathLike(MAX_GLOB_LENGTH)
const artifactPath = pathLike(MAX_PATH_LENGTH)

export const labelSchema = z.string().superRefine((value, ctx) => {
  const problem = labelProblem(value)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `must be a valid label: ${problem}` })
})

/** A selector name in canonical form: labels sorted, unique, joined by `+`. */
export const selectorSchema = z.string().min(1).max(MAX_SELECTOR_LENGTH).superRefine((value, ctx) => {
  let canonical: string
  try {
    canonical = parseSelector(value).join('+')
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be a platform selector: ${(err as Error).message}` })
    return
  }
  if (canonical !== value) ctx.addIssue({ code: 'custom', message: `must list its labels sorted and once each, joined by "+" ("${canonical}")` })
})

function uniqueBy<T> (key: (item: T) => string, what: string) {
  return (items: T[], ctx: z.core.$RefinementCtx<T[]>): void => {
    const seen = new Set<string>()
    items.forEach((item, i) => {
      const k = key(item)
      if (seen.has(k)) ctx.addIssue({ code: 'custom', path: [i], message: `repeats ${what} ${JSON.stringify(k)}` })
      seen.add(k)
    })
  }
}

// ---------------------------------------------------------------- job

export const stepSchema = z.strictObject({
  name: line(MAX_STEP_NAME_LENGTH),
  run: text(MAX_STEP_RUN_LENGTH)
})

export const jobPlatformSchema = z.strictObject({
  selector: selectorSchema,
  labels: z.array(labelSchema).min(1).max(MAX_LABELS_PER_SELECTOR),
  replicas: z.int().min(1).max(MAX_REPLICAS)
}).superRefine((platform, ctx) => {
  const joined = [...new Set(platform.labels)].sort().join('+')
  if (joined !== platform.selector || platform.labels.join('+') !== joined) {
    ctx.addIssue({ code: 'custom', path: ['labels'], message: `must be the selector's labels, sorted and once each (${JSON.stringify(platform.selector.split('+'))})` })
  }
})

export const limitsSchema = z.strictObject({
  memoryMb: z.int().min(1).max(MAX_MEMORY_MB).optional(),
  diskMb: z.int().min(1).max(MAX_DISK_MB).optional(),
  cpuSeconds: z.int().min(1).max(MAX_CPU_SECONDS).optional(),
  processes: z.int().min(1).max(MAX_PROCESSES).optional()
})

export const jobBodySchema = z.strictObject({
  name: line(MAX_JOB_NAME_LENGTH),
  source: sha256,
  sourceSize: count,
  steps: z.array(stepSchema).min(1).max(MAX_STEPS).superRefine(uniqueBy((s) => s.name, 'the step name')),
  platforms: z.array(jobPlatformSchema).min(1).max(MAX_PLATFORMS).superRefine(uniqueBy((p) => p.selector, 'the selector')),
  artifacts: z.array(globSchema).max(MAX_GLOBS),
  independent: z.array(globSchema).max(MAX_GLOBS),
  timeout: z.int().min(MIN_TIMEOUT_S).max(MAX_TIMEOUT_S),
  limits: limitsSchema,
  network: z.boolean(),
  root: z.boolean()
})

// ---------------------------------------------------------------- claim

export const claimBodySchema = z.strictObject({
  job: entryId,
  platform: selectorSchema,
  /** Expiry of the claim, ms since the epoch. */
  lease: count
})

// ---------------------------------------------------------------- result

export const stepResultSchema = z.strictObject({
  name: line(MAX_STEP_NAME_LENGTH),
  /** null when the step was killed by a signal or never ran. */
  exit: z.int().min(0).max(255).nullable(),
  signal: z.string().regex(/^SIG[A-Z0-9]+$/, 'must be a signal name such as "SIGKILL"').max(MAX_SIGNAL_LENGTH).optional(),
  ms: count
})

export const artifactSchema = z.strictObject({
  path: artifactPath,
  sha256,
  size: count
})

export const envSchema = z.strictObject({
  os: line(MAX_ENV_FIELD_LENGTH),
  kernel: line(MAX_ENV_FIELD_LENGTH),
  arch: line(MAX_ENV_FIELD_LENGTH),
  /** e.g. `bubblewrap 0.8.0`, or `none` when the volunteer opted out of the sandbox. */
  sandbox: line(MAX_ENV_FIELD_LENGTH),
  tools: z.record(line(MAX_TOOL_NAME_LENGTH), line(MAX_ENV_FIELD_LENGTH)).superRefine((tools, ctx) => {
    const n = Object.keys(tools).length
    if (n > MAX_ENV_TOOLS) ctx.addIssue({ code: 'custom', message: `must have at most ${MAX_ENV_TOOLS} entries, got ${n}` })
  }),
  warning: text(MAX_REASON_LENGTH).optional()
})

export const resultBodySchema = z.strictObject({
  job: entryId,
  platform: selectorSchema,
  status: z.enum(RESULT_STATUSES),
  reason: text(MAX_REASON_LENGTH).optional(),
  steps: z.array(stepResultSchema).max(MAX_STEPS),
  log: sha256.nullable(),
  logSize: count,
  artifacts: z.array(artifactSchema).max(MAX_RESULT_ARTIFACTS).superRefine((artifacts, ctx) => {
    for (let i = 1; i < artifacts.length; i++) {
      // Code-unit order, the order RFC 8785 uses for member names.
      if (!(artifacts[i - 1]!.path < artifacts[i]!.path)) {
        ctx.addIssue({ code: 'custom', path: [i, 'path'], message: 'must be sorted by path with no path twice' })
        return
      }
    }
  }),
  env: envSchema,
  start: count,
  end: count
}).superRefine((result, ctx) => {
  if (result.end < result.start) ctx.addIssue({ code: 'custom', path: ['end'], message: 'must not be before start' })
  if (result.log === null && result.logSize !== 0) ctx.addIssue({ code: 'custom', path: ['logSize'], message: 'must be 0 when there is no log' })
})

// ---------------------------------------------------------------- cancel, diagnosis, revoke

export const cancelBodySchema = z.strictObject({
  job: entryId,
  reason: text(MAX_REASON_LENGTH).optional()
})

export const diagnosisBodySchema = z.strictObject({
  job: entryId,
  platform: selectorSchema,
  /** sha256 of the report blob. */
  report: sha256,
  summary: text(MAX_SUMMARY_LENGTH),
  /** The builders whose results were compared. */
  builders: z.array(authorKey).min(1).max(MAX_DIAGNOSIS_BUILDERS).superRefine(uniqueBy((b) => b, 'the builder')),
  /** The artifact paths the report covers. */
  files: z.array(artifactPath).max(MAX_DIAGNOSIS_FILES).superRefine(uniqueBy((f) => f, 'the file'))
})

export const revokeBodySchema = z.strictObject({
  reason: text(MAX_REASON_LENGTH).optional()
})

export type JobBody = z.infer<typeof jobBodySchema>
export type JobPlatform = z.infer<typeof jobPlatformSchema>
export type JobStep = z.infer<typeof stepSchema>
export type JobLimits = z.infer<typeof limitsSchema>
export type ClaimBody = z.infer<typeof claimBodySchema>
export type StepResult = z.infer<typeof stepResultSchema>
export type Artifact = z.infer<typeof artifactSchema>
export type BuildEnv = z.infer<typeof envSchema>
export type ResultBody = z.infer<typeof resultBodySchema>
export type CancelBody = z.infer<typeof cancelBodySchema>
export type DiagnosisBody = z.infer<typeof diagnosisBodySchema>
export type RevokeBody = z.infer<typeof revokeBodySchema>

export const JOB_ENTRY_SCHEMAS = {
  job: jobBodySchema,
  claim: claimBodySchema,
  result: resultBodySchema,
  cancel: cancelBodySchema,
  diagnosis: diagnosisBodySchema,
  revoke: revokeBodySchema
} as const

export type JobEntryType = keyof typeof JOB_ENTRY_SCHEMAS

/** Types whose body names a job (`body.job`) and so belong to that job's fold. */
export const JOB_REFERRING_TYPES: ReadonlySet<string> = new Set(['claim', 'result', 'cancel', 'diagnosis'])

function validator (schema: z.ZodType): (body: unknown) => void {
  return (body) => {
    const parsed = schema.safeParse(body, { reportInput: true })
    if (!parsed.success) throw new Error(describeIssues(parsed.error))
  }
}

const refersToJob = (body: EntryBody): string[] => (typeof body.job === 'string' ? [body.job] : [])

/** The rules the ledger's EntryCodec needs for every type the jobs layer defines. */
export const jobEntryRules: EntryTypeRules = {
  job: { validate: validator(jobBodySchema) },
  claim: { validate: validator(claimBodySchema), refs: refersToJob },
  result: { validate: validator(resultBodySchema), refs: refersToJob },
  cancel: { validate: validator(cancelBodySchema), refs: refersToJob },
  diagnosis: { validate: validator(diagnosisBodySchema), refs: refersToJob },
  revoke: { validate: validator(revokeBodySchema) }
}
