import { z } from 'zod'
// The modules, not environments/index.ts: the entry rules are read by the audit, which must not load the environment store.
import { HOST_ENVIRONMENT, MAX_REQUESTED_PACKAGES } from '../environments/constants.js'
import { environmentNameProblem, packageNameProblem } from '../environments/names.js'
import type { EntryBody, EntryTypeRules } from '../ledger/entry.js'
import { membershipEntryRules } from '../membership/bodies.js'
import {
  MAX_DIAGNOSIS_BUILDERS, MAX_DIAGNOSIS_FILES, MAX_CPU_SECONDS, MAX_DISK_MB, MAX_ENV_FIELD_LENGTH, MAX_ENV_TOOLS,
  MAX_GLOB_LENGTH, MAX_GLOBS, MAX_JOB_NAME_LENGTH, MAX_LABELS_PER_SELECTOR, MAX_MEMORY_MB, MAX_PATH_LENGTH,
  MAX_PLATFORMS, MAX_PROCESSES, MAX_REASON_LENGTH, MAX_REPLICAS, MAX_RESULT_ARTIFACTS, MAX_SELECTOR_LENGTH,
  MAX_SIGNAL_LENGTH, MAX_STEP_NAME_LENGTH, MAX_STEP_RUN_LENGTH, MAX_STEPS, MAX_SUMMARY_LENGTH, MAX_TIMEOUT_S,
  MAX_TOOL_NAME_LENGTH, MIN_TIMEOUT_S, MAX_URL_LENGTH, MAX_RELEASE_LENGTH, MIN_WATCH_INTERVAL_S, MAX_WATCH_INTERVAL_S, RELEASE_PATTERN,
  MAX_RESULT_PACKAGES, MAX_PACKAGE_VERSION_LENGTH, WATCH_KINDS
} from './constants.js'
import { claimBodyAccepted, jobBodyAccepted, resultBodyAccepted } from './fast-bodies.js'
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

/** An http(s) or git URL on one line: no white space, no control characters. */
function webUrl (): z.ZodString {
  return line(MAX_URL_LENGTH).regex(/^(https?|git):\/\/\S+$/, 'must be an http(s) or git URL')
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

/** An environment's name (never `host`, which is no environment): also a platform label. */
export const environmentSchema = z.string().superRefine((value, ctx) => {
  const problem = environmentNameProblem(value) ?? (value === HOST_ENVIRONMENT ? `"${HOST_ENVIRONMENT}" means no environment: leave the field out` : undefined)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
})

export const packageSchema = z.string().superRefine((value, ctx) => {
  const problem = packageNameProblem(value)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem })
})

function sortedUnique (items: string[], ctx: z.core.$RefinementCtx<string[]>): void {
  for (let i = 1; i < items.length; i++) {
    if (!(items[i - 1]! < items[i]!)) {
      ctx.addIssue({ code: 'custom', path: [i], message: 'must be sorted, each once' })
      return
    }
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
  replicas: z.int().min(1).max(MAX_REPLICAS),
  /** Build in this environment (a root file system the builder makes or imported), not on the builder's host. Its name is one of the labels. */
  environment: environmentSchema.optional()
}).superRefine((platform, ctx) => {
  const joined = [...new Set(platform.labels)].sort().join('+')
  if (joined !== platform.selector || platform.labels.join('+') !== joined) {
    ctx.addIssue({ code: 'custom', path: ['labels'], message: `must be the selector's labels, sorted and once each (${JSON.stringify(platform.selector.split('+'))})` })
  }
  if (platform.environment !== undefined && !platform.labels.includes(platform.environment)) {
    ctx.addIssue({ code: 'custom', path: ['environment'], message: `must be one of the platform's labels (an environment implies its label), and ${JSON.stringify(platform.environment)} is not` })
  }
})

export const limitsSchema = z.strictObject({
  memoryMb: z.int().min(1).max(MAX_MEMORY_MB).optional(),
  diskMb: z.int().min(1).max(MAX_DISK_MB).optional(),
  cpuSeconds: z.int().min(1).max(MAX_CPU_SECONDS).optional(),
  processes: z.int().min(1).max(MAX_PROCESSES).optional()
})

/** Digests of an upstream release, named as in-toto's DigestSet: hex of the bytes (or the git commit id). */
export const DIGEST_ALGORITHMS = ['sha256', 'sha512', 'sha1', 'gitCommit'] as const
const HEX_LENGTHS: Record<string, number[]> = { sha256: [64], sha512: [128], sha1: [40], gitCommit: [40, 64] }

export const digestSetSchema = z.partialRecord(z.enum(DIGEST_ALGORITHMS), z.string().regex(/^[0-9a-f]+$/, 'must be lower-case hex'))
  .superRefine((set, ctx) => {
    const entries = Object.entries(set) as Array<[string, string]>
    if (entries.length === 0) ctx.addIssue({ code: 'custom', message: 'must name at least one digest' })
    for (const [algorithm, hex] of entries) {
      if (!HEX_LENGTHS[algorithm]!.includes(hex.length)) ctx.addIssue({ code: 'custom', path: [algorithm], message: `must be ${HEX_LENGTHS[algorithm]!.join(' or ')} hex digits` })
    }
  })

/**
 * Where a job's source came from when a watch made it: the release's URL and
 * its digest as the upstream published it (npm `integrity`, PyPI sha256,
 * Debian .dsc sha256, git commit id), so anyone can confirm that what was
 * built is what was released.
 */
export const upstreamSchema = z.strictObject({
  url: webUrl(),
  digest: digestSetSchema
})

/** What made a job: a watch (its entry id) and the release it saw (a version or tag). */
export const triggerSchema = z.strictObject({
  watch: entryId,
  release: line(MAX_RELEASE_LENGTH)
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
  root: z.boolean(),
  /** Build dependencies installed into each platform's environment before the steps run (sorted, each once). */
  packages: z.array(packageSchema).min(1).max(MAX_REQUESTED_PACKAGES).superRefine(sortedUnique).optional(),
  trigger: triggerSchema.optional(),
  upstream: upstreamSchema.optional()
}).superRefine((job, ctx) => {
  if (job.packages !== undefined && job.platforms.some((p) => p.environment === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['packages'], message: 'need an environment on every platform: packages are installed into a copy of an environment, never onto a builder\'s host' })
  }
})

// ---------------------------------------------------------------- watch, unwatch, poll (see watches.ts; WATCH_KINDS is in constants.ts)

/** Names of npm packages, PyPI projects and Debian source packages. */
const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[A-Za-z0-9][A-Za-z0-9._~-]*$/
const SUITE = /^[a-z0-9][a-z0-9.-]*$/

const watchUrl = webUrl()

/** The job made for each release, with `{version}` (and `{name}`) replaced in the name and steps. */
export const jobTemplateSchema = z.strictObject({
  name: line(MAX_JOB_NAME_LENGTH),
  platforms: z.array(jobPlatformSchema).min(1).max(MAX_PLATFORMS),
  steps: z.array(stepSchema).min(1).max(MAX_STEPS),
  artifacts: z.array(globSchema).max(MAX_GLOBS),
  independent: z.array(globSchema).max(MAX_GLOBS),
  timeout: z.int().min(MIN_TIMEOUT_S).max(MAX_TIMEOUT_S),
  limits: limitsSchema,
  network: z.boolean(),
  root: z.boolean()
})
export type JobTemplate = z.infer<typeof jobTemplateSchema>

export const watchBodySchema = z.strictObject({
  kind: z.enum(WATCH_KINDS),
  /** git: the repository URL; npm, pypi, debian: the registry, index or archive base URL. */
  source: watchUrl,
  /** The package, project or source package; absent for git. */
  package: z.string().min(1).max(214).regex(PACKAGE_NAME, 'must be a package name').optional(),
  /** git: which refs are releases, a glob over ref names (default refs/tags/*). */
  ref: z.string().min(1).max(256).regex(/^refs\/[A-Za-z0-9._/*+-]+$/, 'must be a ref glob such as refs/tags/v*').optional(),
  /** debian: the suite (bookworm, trixie, …). */
  suite: z.string().min(1).max(64).regex(SUITE, 'must be a suite name such as bookworm').optional(),
  /** Seconds between polls. */
  interval: z.int().min(MIN_WATCH_INTERVAL_S).max(MAX_WATCH_INTERVAL_S),
  /** The job per release; absent: the release's own buildhaus.json (git, npm, pypi). */
  job: jobTemplateSchema.optional()
}).superRefine((body, ctx) => {
  if (body.kind === 'git' && body.package !== undefined) ctx.addIssue({ code: 'custom', path: ['package'], message: 'a git watch names no package: the source URL is the repository' })
  if (body.kind !== 'git' && body.package === undefined) ctx.addIssue({ code: 'custom', path: ['package'], message: `a ${body.kind} watch needs the package it watches` })
  if (body.kind !== 'git' && body.ref !== undefined) ctx.addIssue({ code: 'custom', path: ['ref'], message: 'only git watches have a ref pattern' })
  if ((body.kind === 'debian') !== (body.suite !== undefined)) ctx.addIssue({ code: 'custom', path: ['suite'], message: body.kind === 'debian' ? 'a debian watch needs its suite' : 'only debian watches have a suite' })
  if (body.kind === 'debian' && body.job === undefined) ctx.addIssue({ code: 'custom', path: ['job'], message: 'a debian watch needs a job template (a Debian source package holds no buildhaus.json)' })
})

export const unwatchBodySchema = z.strictObject({ watch: z.string().regex(HEX64, 'must be an entry id') })

export const pollBodySchema = z.strictObject({
  watch: z.string().regex(HEX64, 'must be an entry id'),
  ok: z.boolean(),
  reason: z.string().min(1).max(MAX_REASON_LENGTH).optional(),
  /** Releases the source listed. */
  releases: z.int().min(0).optional(),
  /** The newest of them. */
  latest: z.string().min(1).max(MAX_RELEASE_LENGTH).regex(RELEASE_PATTERN).optional()
})

export type WatchBody = z.infer<typeof watchBodySchema>
export type UnwatchBody = z.infer<typeof unwatchBodySchema>
export type PollBody = z.infer<typeof pollBodySchema>


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
  signal: z.string().min(4).max(MAX_SIGNAL_LENGTH).regex(/^SIG[A-Z0-9]+$/, 'must be a signal name such as "SIGKILL"').optional(),
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

/** The environment a result was built in: its name, its manifest's hash, and the versions of the packages that matter most. */
export const resultEnvironmentSchema = z.strictObject({
  name: environmentSchema,
  /** sha256 of the environment's manifest: a blob anyone can fetch. */
  manifest: sha256,
  /** Versions of the job's packages and of a few toolchain packages (libc6, gcc, binutils, python3, …), as installed. */
  packages: z.record(packageSchema, line(MAX_PACKAGE_VERSION_LENGTH)).superRefine((packages, ctx) => {
    const n = Object.keys(packages).length
    if (n > MAX_RESULT_PACKAGES) ctx.addIssue({ code: 'custom', message: `must have at most ${MAX_RESULT_PACKAGES} entries, got ${n}` })
  })
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
  /** Absent: built on the builder's host. */
  environment: resultEnvironmentSchema.optional(),
  start: count,
  end: count,
  /**
   * The builder's Ed25519 signature (hex) of the DSSE pre-authentication
   * encoding of this result's provenance statement (an in-toto Statement
   * with a SLSA provenance v1 predicate, src/jobs/provenance.ts): only on a
   * pass with artifacts. Every builder that agrees signs the same bytes, so
   * anyone can assemble one envelope from their results (docs/PROVENANCE.md).
   */
  provenance: z.string().regex(/^[0-9a-f]{128}$/, 'must be an Ed25519 signature (128 lower-case hex digits)').optional()
}).superRefine((result, ctx) => {
  if (result.end < result.start) ctx.addIssue({ code: 'custom', path: ['end'], message: 'must not be before start' })
  if (result.log === null && result.logSize !== 0) ctx.addIssue({ code: 'custom', path: ['logSize'], message: 'must be 0 when there is no log' })
  if (result.provenance !== undefined && (result.status !== 'pass' || result.artifacts.length === 0)) ctx.addIssue({ code: 'custom', path: ['provenance'], message: 'only a pass with artifacts carries a provenance signature' })
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
  files: z.array(artifactPath).max(MAX_DIAGNOSIS_FILES).superRefine(uniqueBy((f) => f, 'the file')),
  /** A cross-platform diagnosis: the other platform compared with `platform` (a file declared independent differs between them). */
  versus: selectorSchema.optional()
})

export const revokeBodySchema = z.strictObject({
  reason: text(MAX_REASON_LENGTH).optional()
})

export type JobBody = z.infer<typeof jobBodySchema>
export type Upstream = z.infer<typeof upstreamSchema>
export type Trigger = z.infer<typeof triggerSchema>
export type JobPlatform = z.infer<typeof jobPlatformSchema>
export type JobStep = z.infer<typeof stepSchema>
export type JobLimits = z.infer<typeof limitsSchema>
export type ClaimBody = z.infer<typeof claimBodySchema>
export type StepResult = z.infer<typeof stepResultSchema>
export type Artifact = z.infer<typeof artifactSchema>
export type BuildEnv = z.infer<typeof envSchema>
export type ResultEnvironment = z.infer<typeof resultEnvironmentSchema>
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

/**
 * The rule's check: `accepted` (fast-bodies.ts), where given, vouches for the
 * common shapes; anything it is not sure of goes to the schema, which decides
 * and says what is wrong.
 */
function validator (schema: z.ZodType, accepted?: (body: unknown) => boolean): (body: unknown) => void {
  return (body) => {
    if (accepted?.(body) === true) return
    const parsed = schema.safeParse(body, { reportInput: true })
    if (!parsed.success) throw new Error(describeIssues(parsed.error))
  }
}

const refersToJob = (body: EntryBody): string[] => (typeof body.job === 'string' ? [body.job] : [])

const refersToWatch = (body: EntryBody): string[] => (typeof body.watch === 'string' ? [body.watch] : [])

/**
 * The rules the ledger's EntryCodec needs for every type a node knows: those
 * the jobs layer defines, and the membership layer's `vouch` and `unvouch`
 * (one table, so that every codec of the node, the audit and the tools
 * accepts the same types).
 */
export const jobEntryRules: EntryTypeRules = {
  ...membershipEntryRules,
  watch: { validate: validator(watchBodySchema) },
  unwatch: { validate: validator(unwatchBodySchema), refs: refersToWatch },
  poll: { validate: validator(pollBodySchema), refs: refersToWatch },
  job: { validate: validator(jobBodySchema, jobBodyAccepted) },
  claim: { validate: validator(claimBodySchema, claimBodyAccepted), refs: refersToJob },
  result: { validate: validator(resultBodySchema, resultBodyAccepted), refs: refersToJob },
  cancel: { validate: validator(cancelBodySchema), refs: refersToJob },
  diagnosis: { validate: validator(diagnosisBodySchema), refs: refersToJob },
  // A revoke ends its author's chain: the ledger stores nothing after it, and the fold and audit ignore anything after it.
  revoke: { validate: validator(revokeBodySchema), final: true }
}
