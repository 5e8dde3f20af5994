import { z } from 'zod'
import { MAX_ENTRY_BYTES } from '../ledger/constants.js'
import { canonicalJson } from '../util/canonical-json.js'
import { HOST_ENVIRONMENT, MAX_REQUESTED_PACKAGES } from '../environments/constants.js'
import { environmentNameProblem } from '../environments/names.js'
import { globSchema, jobBodySchema, limitsSchema, packageSchema, stepSchema, type JobBody, type JobPlatform } from './bodies.js'
import {
  DEFAULT_REPLICAS, DEFAULT_TIMEOUT_S, MAX_GLOBS, MAX_PLATFORMS, MAX_REPLICAS, MAX_STEPS,
  MAX_TIMEOUT_S, MIN_TIMEOUT_S, SPEC_FILE_NAME
} from './constants.js'
import { JobSpecError } from './errors.js'
import { jobSpecOf, parseSpecJson, type JobSpec } from './spec-file.js'
import { describeIssues } from './issues.js'
import { normaliseLabels, parseSelector } from './selector.js'

/**
 * `buildhaus.json`, the job description in a submitted directory, and how it
 * becomes a `job` entry body together with the CLI's overrides.
 */

export type { JobSpec } from './spec-file.js'

/** What the CLI (`submit --platform SEL --replicas N --timeout S`) may override. */
export interface SpecOverrides {
  /** Replaces the file's platforms; `a+b` means a node needs both labels. */
  platforms?: string[]
  /** Replaces every platform's replica count. */
  replicas?: number
  /** Replaces the timeout, in seconds. */
  timeout?: number
}

export interface SourceRef {
  /** sha256 (hex) of the source archive blob. */
  hash: string
  /** Its size in bytes. */
  size: number
}

const platformEntry = z.unknown().transform((value, ctx): string[] => {
  try {
    if (typeof value === 'string') return parseSelector(value)
    if (Array.isArray(value) && value.every((label) => typeof label === 'string')) {
      if (value.some((label) => label.includes('+'))) throw new Error('write a selector either as "a+b" or as ["a", "b"], not both')
      return normaliseLabels(value)
    }
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `must be a platform selector: ${(err as Error).message}` })
    return z.NEVER
  }
  ctx.addIssue({ code: 'custom', message: 'must be a selector: a label string such as "linux-x64" (or "linux-x64+debian-12"), or an array of labels' })
  return z.NEVER
})

const replicaCount = z.int().min(1).max(MAX_REPLICAS)

const environmentName = z.string().superRefine((value, ctx) => {
  const problem = environmentNameProblem(value)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${problem}; "${HOST_ENVIRONMENT}" means the builder's own system` })
})

const specSchema = z.strictObject({
  name: jobBodySchema.shape.name,
  platforms: z.array(platformEntry).min(1).max(MAX_PLATFORMS).optional(),
  replicas: z.union([replicaCount, z.record(z.string(), replicaCount)], {
    error: `must be a replica count (1 to ${MAX_REPLICAS}) or an object mapping selectors to counts`
  }).optional(),
  steps: z.array(stepSchema).min(1).max(MAX_STEPS),
  artifacts: z.array(globSchema).max(MAX_GLOBS).optional(),
  independent: z.array(globSchema).max(MAX_GLOBS).optional(),
  timeout: z.int().min(MIN_TIMEOUT_S).max(MAX_TIMEOUT_S).optional(),
  resources: limitsSchema.optional(),
  network: z.boolean().optional(),
  root: z.boolean().optional(),
  environment: z.union([environmentName, z.array(environmentName).min(1).max(MAX_PLATFORMS)], {
    error: `must be an environment name such as "debian-12", or a list of them (at most ${MAX_PLATFORMS})`
  }).optional(),
  packages: z.array(packageSchema).min(1).max(MAX_REQUESTED_PACKAGES).optional()
}).superRefine((spec, ctx) => {
  const environments = spec.environment === undefined ? [] : typeof spec.environment === 'string' ? [spec.environment] : spec.environment
  const seenEnvironments = new Set<string>()
  environments.forEach((name, i) => {
    if (seenEnvironments.has(name)) ctx.addIssue({ code: 'custom', path: ['environment', i], message: `repeats the environment ${JSON.stringify(name)}` })
    seenEnvironments.add(name)
  })
  if (spec.packages !== undefined && (environments.length === 0 || environments.includes(HOST_ENVIRONMENT))) {
    ctx.addIssue({ code: 'custom', path: ['packages'], message: 'needs an "environment" (and not "host"): packages are installed into a copy of an environment, never onto a builder\'s own system' })
  }
  const names = new Set<string>()
  spec.steps.forEach((step, i) => {
    if (names.has(step.name)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'name'], message: `repeats the step name ${JSON.stringify(step.name)}: step names must be unique` })
    names.add(step.name)
  })
  const selectors = new Set<string>()
  spec.platforms?.forEach((labels, i) => {
    const name = labels.join('+')
    if (selectors.has(name)) ctx.addIssue({ code: 'custom', path: ['platforms', i], message: `repeats the platform ${JSON.stringify(name)}` })
    selectors.add(name)
  })
  if (spec.replicas !== undefined && typeof spec.replicas === 'object') {
    for (const key of Object.keys(spec.replicas)) {
      let name: string
      try {
        name = parseSelector(key).join('+')
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['replicas', key], message: `is not a platform selector: ${(err as Error).message}` })
        continue
      }
      if (spec.platforms !== undefined && spec.environment === undefined && !selectors.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['replicas', key], message: `names no platform of "platforms" (${[...selectors].join(', ')})` })
      }
    }
  }
})

/** Validate the parsed JSON of a buildhaus.json. Throws JobSpecError naming the field and what is expected. */
export function validateJobSpec (value: unknown, file = SPEC_FILE_NAME): JobSpec {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new JobSpecError(`${file}: must hold a JSON object such as {"name": …, "platforms": […], "steps": […]}`)
  }
  const parsed = specSchema.safeParse(value, { reportInput: true })
  if (!parsed.success) throw new JobSpecError(`${file}: ${describeIssues(parsed.error)}`)
  return jobSpecOf(parsed.data)
}

/** Parse the text of a buildhaus.json. */
export function parseJobSpec (text: string, file = SPEC_FILE_NAME): JobSpec {
  return validateJobSpec(parseSpecJson(text, file), file)
}

export { readJobSpec } from './spec-file.js'

/**
 * Each platform once per environment: an environment adds its name to the
 * platform's labels (a builder offering the environment offers the label),
 * `host` adds nothing. Without environments, the platforms as they are.
 */
function withEnvironments (platforms: string[][], environments: string[] | undefined): Array<{ labels: string[], environment?: string }> {
  if (environments === undefined) return platforms.map((labels) => ({ labels: [...labels] }))
  const combined: Array<{ labels: string[], environment?: string }> = []
  const seen = new Set<string>()
  for (const labels of platforms) {
    for (const environment of environments) {
      const host = environment === HOST_ENVIRONMENT
      const all = host ? [...labels] : [...new Set([...labels, environment])].sort()
      const selector = all.join('+')
      if (seen.has(selector)) throw new JobSpecError(`${SPEC_FILE_NAME}: the platform ${selector} comes out twice from "platforms" and "environment"; list each once`)
      seen.add(selector)
      combined.push(host ? { labels: all } : { labels: all, environment })
    }
  }
  if (combined.length > MAX_PLATFORMS) throw new JobSpecError(`${SPEC_FILE_NAME}: ${platforms.length} platforms × ${environments.length} environments make ${combined.length} platforms, more than the ${MAX_PLATFORMS} a job may have`)
  return combined
}

function definedOnly<T extends object> (value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

function overridePlatforms (selectors: string[]): string[][] {
  if (selectors.length === 0) throw new JobSpecError('--platform was given no selector')
  if (selectors.length > MAX_PLATFORMS) throw new JobSpecError(`at most ${MAX_PLATFORMS} --platform selectors, got ${selectors.length}`)
  const seen = new Set<string>()
  return selectors.map((text) => {
    let labels: string[]
    try {
      labels = parseSelector(text)
    } catch (err) {
      throw new JobSpecError(`--platform ${JSON.stringify(text)}: ${(err as Error).message}`)
    }
    const name = labels.join('+')
    if (seen.has(name)) throw new JobSpecError(`--platform ${name} is given twice`)
    seen.add(name)
    return labels
  })
}

function checkIntegerOption (flag: string, value: number, min: number, max: number, unit = ''): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new JobSpecError(`${flag} must be a whole number from ${min} to ${max}${unit}, got ${value}`)
  }
}

/**
 * Everything the maximum size of a job entry leaves for the body: the
 * envelope (author, ids, signature, field names) takes well under 1 KiB.
 */
const MAX_JOB_BODY_BYTES = MAX_ENTRY_BYTES - 1024

/**
 * The `job` entry body for a validated spec, the CLI's overrides and the
 * source archive blob. Platforms keep the order the submitter wrote (the
 * dashboard's columns). Throws JobSpecError.
 */
export function jobBodyFromSpec (spec: JobSpec, overrides: SpecOverrides, source: SourceRef): JobBody {
  if (overrides.replicas !== undefined) checkIntegerOption('--replicas', overrides.replicas, 1, MAX_REPLICAS)
  if (overrides.timeout !== undefined) checkIntegerOption('--timeout', overrides.timeout, MIN_TIMEOUT_S, MAX_TIMEOUT_S, ' seconds')
  const platforms = overrides.platforms !== undefined ? overridePlatforms(overrides.platforms) : spec.platforms
  if (platforms === undefined) {
    throw new JobSpecError(`${SPEC_FILE_NAME}: platforms is required (e.g. "platforms": ["linux-x64"]), or pass --platform`)
  }
  // The entry always says its timeout: readers never need to know the default.
  const timeout = overrides.timeout ?? spec.timeout ?? DEFAULT_TIMEOUT_S
  const replicasFor = (selector: string, environment: string | undefined): number => {
    if (overrides.replicas !== undefined) return overrides.replicas
    if (typeof spec.replicas === 'number') return spec.replicas
    return spec.replicas?.[selector] ?? (environment !== undefined ? spec.replicas?.[environment] : undefined) ?? DEFAULT_REPLICAS
  }
  const jobPlatforms = withEnvironments(platforms, spec.environment).map(({ labels, environment }): JobPlatform => {
    const selector = labels.join('+')
    return { selector, labels, replicas: replicasFor(selector, environment), ...(environment !== undefined ? { environment } : {}) }
  })
  if (typeof spec.replicas === 'object' && spec.environment !== undefined) {
    for (const key of Object.keys(spec.replicas)) {
      if (!jobPlatforms.some((p) => p.selector === key || p.environment === key)) {
        throw new JobSpecError(`${SPEC_FILE_NAME}: replicas names ${JSON.stringify(key)}, which is neither a platform (${jobPlatforms.map((p) => p.selector).join(', ')}) nor an environment of the job`)
      }
    }
  }
  const body: JobBody = {
    name: spec.name,
    source: source.hash,
    sourceSize: source.size,
    steps: spec.steps.map((step) => ({ name: step.name, run: step.run })),
    platforms: jobPlatforms,
    artifacts: [...spec.artifacts],
    independent: [...spec.independent],
    timeout,
    limits: definedOnly({ ...spec.resources }),
    network: spec.network,
    root: spec.root,
    ...(spec.packages !== undefined ? { packages: [...spec.packages] } : {})
  }
  const checked = jobBodySchema.safeParse(body, { reportInput: true })
  if (!checked.success) throw new JobSpecError(`the job is invalid: ${describeIssues(checked.error)}`)
  const bytes = Buffer.byteLength(canonicalJson(body))
  if (bytes > MAX_JOB_BODY_BYTES) {
    throw new JobSpecError(`${SPEC_FILE_NAME}: the job is ${bytes} bytes once encoded and the limit is ${MAX_JOB_BODY_BYTES}: shorten the steps (move long scripts into the source tree)`)
  }
  return body
}
