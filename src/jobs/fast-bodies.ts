import {
  MAX_ENV_FIELD_LENGTH, MAX_ENV_TOOLS, MAX_GLOB_LENGTH, MAX_GLOBS, MAX_JOB_NAME_LENGTH, MAX_LABELS_PER_SELECTOR, MAX_PATH_LENGTH,
  MAX_PLATFORMS, MAX_REASON_LENGTH, MAX_REPLICAS, MAX_RESULT_ARTIFACTS, MAX_SELECTOR_LENGTH, MAX_SIGNAL_LENGTH, MAX_STEP_NAME_LENGTH,
  MAX_STEP_RUN_LENGTH, MAX_STEPS, MAX_TIMEOUT_S, MAX_TOOL_NAME_LENGTH, MIN_TIMEOUT_S, MAX_CPU_SECONDS, MAX_DISK_MB, MAX_MEMORY_MB, MAX_PROCESSES
} from './constants.js'
import { HOST_ENVIRONMENT, MAX_REQUESTED_PACKAGES } from '../environments/constants.js'
import { environmentNameProblem, packageNameProblem } from '../environments/names.js'
import { labelProblem, parseSelector } from './selector.js'

/**
 * Hand-written checks of the common shapes of the three hottest bodies (job,
 * claim, result: nearly every entry of a log), beside their zod schemas in
 * bodies.ts. Each answers `true` only for a body its schema accepts; `false`
 * means "not sure", and the schema then decides and names what is wrong, so
 * the rules and the errors stay the schema's. They leave rarer members to
 * the schema (a job's packages, trigger, upstream and platform environments;
 * a result's environment) and refuse to guess on anything but plain data.
 * A property test (test/jobs/fast-bodies.test.ts) holds them to "true only
 * where the schema accepts". They are several times faster than the schemas,
 * which an audit of a whole log would otherwise spend most of its time in.
 */

const HEX64 = /^[0-9a-f]{64}$/
const SIGNATURE = /^[0-9a-f]{128}$/
const SIGNAL = /^SIG[A-Z0-9]+$/
// eslint-disable-next-line no-control-regex -- refusing them is the point
const CONTROL = /[\u0000-\u001f\u007f]/
const STATUSES: ReadonlySet<unknown> = new Set(['pass', 'fail', 'timeout', 'error', 'refused'])

type Plain = Record<string, unknown>

/** A plain object (what JSON.parse makes) whose every member is named in `allowed`. */
function plain (value: unknown, allowed: ReadonlySet<string>): value is Plain {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false
  for (const name in value) if (!allowed.has(name)) return false
  return true
}

function isLine (value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= max && !CONTROL.test(value)
}

function isText (value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= max
}

function isInt (value: unknown, min: number, max: number): boolean {
  return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max
}

function isCount (value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isHex64 (value: unknown): boolean {
  return typeof value === 'string' && HEX64.test(value)
}

/** Relative path rules of bodies.ts's relativePathProblem, answered without building anything in the common case. */
function isRelativePath (value: unknown, max: number): boolean {
  if (typeof value !== 'string' || value.length < 1 || value.length > max) return false
  if (CONTROL.test(value) || value.startsWith('/') || value.includes('\\')) return false
  for (const part of value.split('/')) if (part === '' || part === '.' || part === '..') return false
  return true
}

/** Selectors seen to be canonical (a pure property of the string): a log names few. */
const canonicalSelectors = new Set<string>()
const MAX_REMEMBERED_SELECTORS = 1024

function isSelector (value: unknown): boolean {
  if (typeof value !== 'string') return false
  if (canonicalSelectors.has(value)) return true
  if (value.length < 1 || value.length > MAX_SELECTOR_LENGTH) return false
  try {
    if (parseSelector(value).join('+') !== value) return false
  } catch {
    return false
  }
  if (canonicalSelectors.size < MAX_REMEMBERED_SELECTORS) canonicalSelectors.add(value)
  return true
}

const CLAIM = new Set(['job', 'platform', 'lease'])

export function claimBodyAccepted (body: unknown): boolean {
  return plain(body, CLAIM) && isHex64(body.job) && isSelector(body.platform) && isCount(body.lease)
}

const RESULT = new Set(['job', 'platform', 'status', 'reason', 'steps', 'log', 'logSize', 'artifacts', 'env', 'start', 'end', 'provenance'])
const STEP_RESULT = new Set(['name', 'exit', 'signal', 'ms'])
const ARTIFACT = new Set(['path', 'sha256', 'size'])
const ENV = new Set(['os', 'kernel', 'arch', 'sandbox', 'tools', 'warning'])

function isStepResult (step: unknown): boolean {
  if (!plain(step, STEP_RESULT)) return false
  if (!isLine(step.name, MAX_STEP_NAME_LENGTH) || !isCount(step.ms)) return false
  if (step.exit !== null && !isInt(step.exit, 0, 255)) return false
  const signal = step.signal
  return signal === undefined || (typeof signal === 'string' && signal.length >= 4 && signal.length <= MAX_SIGNAL_LENGTH && SIGNAL.test(signal))
}

function isEnv (env: unknown): boolean {
  if (!plain(env, ENV)) return false
  if (!isLine(env.os, MAX_ENV_FIELD_LENGTH) || !isLine(env.kernel, MAX_ENV_FIELD_LENGTH) || !isLine(env.arch, MAX_ENV_FIELD_LENGTH) || !isLine(env.sandbox, MAX_ENV_FIELD_LENGTH)) return false
  if (env.warning !== undefined && !isText(env.warning, MAX_REASON_LENGTH)) return false
  const tools = env.tools
  if (typeof tools !== 'object' || tools === null || Object.getPrototypeOf(tools) !== Object.prototype) return false
  let n = 0
  for (const name in tools) {
    if (++n > MAX_ENV_TOOLS || !isLine(name, MAX_TOOL_NAME_LENGTH) || !isLine((tools as Plain)[name], MAX_ENV_FIELD_LENGTH)) return false
  }
  return true
}

export function resultBodyAccepted (body: unknown): boolean {
  if (!plain(body, RESULT)) return false
  if (!isHex64(body.job) || !isSelector(body.platform) || !STATUSES.has(body.status)) return false
  if (body.reason !== undefined && !isText(body.reason, MAX_REASON_LENGTH)) return false
  const steps = body.steps
  if (!Array.isArray(steps) || steps.length > MAX_STEPS) return false
  for (const step of steps) if (!isStepResult(step)) return false
  if (body.log === null ? body.logSize !== 0 : !isHex64(body.log)) return false
  if (!isCount(body.logSize)) return false
  const artifacts = body.artifacts
  if (!Array.isArray(artifacts) || artifacts.length > MAX_RESULT_ARTIFACTS) return false
  let previous: string | undefined
  for (const artifact of artifacts) {
    if (!plain(artifact, ARTIFACT) || !isRelativePath(artifact.path, MAX_PATH_LENGTH) || !isHex64(artifact.sha256) || !isCount(artifact.size)) return false
    // Sorted by path, each once, in code-unit order.
    if (previous !== undefined && !(previous < (artifact.path as string))) return false
    previous = artifact.path as string
  }
  if (!isEnv(body.env)) return false
  if (!isCount(body.start) || !isCount(body.end) || (body.end as number) < (body.start as number)) return false
  const provenance = body.provenance
  if (provenance !== undefined && (typeof provenance !== 'string' || !SIGNATURE.test(provenance) || body.status !== 'pass' || artifacts.length === 0)) return false
  return true
}

/** A job without the rarer members (packages, trigger, upstream, platform environments): those are the schema's to check. */
const JOB = new Set(['name', 'source', 'sourceSize', 'steps', 'platforms', 'artifacts', 'independent', 'timeout', 'limits', 'network', 'root'])
const STEP = new Set(['name', 'run'])
const PLATFORM = new Set(['selector', 'labels', 'replicas'])
const LIMITS = new Set(['memoryMb', 'diskMb', 'cpuSeconds', 'processes'])

function isPlatform (platform: unknown): boolean {
  if (!plain(platform, PLATFORM) || !isSelector(platform.selector) || !isInt(platform.replicas, 1, MAX_REPLICAS)) return false
  const labels = platform.labels
  if (!Array.isArray(labels) || labels.length < 1 || labels.length > MAX_LABELS_PER_SELECTOR) return false
  for (let i = 0; i < labels.length; i++) {
    const label: unknown = labels[i]
    if (typeof label !== 'string' || labelProblem(label) !== undefined) return false
    // Sorted and each once: then they are the selector's labels exactly when they join to it.
    if (i > 0 && !((labels[i - 1] as string) < label)) return false
  }
  return labels.join('+') === platform.selector
}

function isGlobs (globs: unknown): boolean {
  if (!Array.isArray(globs) || globs.length > MAX_GLOBS) return false
  for (const glob of globs) if (!isRelativePath(glob, MAX_GLOB_LENGTH)) return false
  return true
}

function isLimits (limits: unknown): boolean {
  if (!plain(limits, LIMITS)) return false
  return (limits.memoryMb === undefined || isInt(limits.memoryMb, 1, MAX_MEMORY_MB)) &&
    (limits.diskMb === undefined || isInt(limits.diskMb, 1, MAX_DISK_MB)) &&
    (limits.cpuSeconds === undefined || isInt(limits.cpuSeconds, 1, MAX_CPU_SECONDS)) &&
    (limits.processes === undefined || isInt(limits.processes, 1, MAX_PROCESSES))
}

export function jobBodyAccepted (body: unknown): boolean {
  if (!plain(body, JOB)) return false
  if (!isLine(body.name, MAX_JOB_NAME_LENGTH) || !isHex64(body.source) || !isCount(body.sourceSize)) return false
  if (!isSteps(body.steps)) return false
  const platforms = body.platforms
  if (!Array.isArray(platforms) || platforms.length < 1 || platforms.length > MAX_PLATFORMS) return false
  const selectors = new Set<unknown>()
  for (const platform of platforms) {
    if (!isPlatform(platform) || selectors.has((platform as Plain).selector)) return false
    selectors.add((platform as Plain).selector)
  }
  return isGlobs(body.artifacts) && isGlobs(body.independent) && isInt(body.timeout, MIN_TIMEOUT_S, MAX_TIMEOUT_S) &&
    isLimits(body.limits) && typeof body.network === 'boolean' && typeof body.root === 'boolean'
}

/** The members of buildhaus.json (spec.ts's schema). */
const SPEC = new Set(['name', 'platforms', 'replicas', 'steps', 'artifacts', 'independent', 'timeout', 'resources', 'network', 'root', 'environment', 'packages'])

function isSteps (steps: unknown): boolean {
  if (!Array.isArray(steps) || steps.length < 1 || steps.length > MAX_STEPS) return false
  const names = new Set<unknown>()
  for (const step of steps) {
    if (!plain(step, STEP) || !isLine(step.name, MAX_STEP_NAME_LENGTH) || !isText(step.run, MAX_STEP_RUN_LENGTH) || names.has(step.name)) return false
    names.add(step.name)
  }
  return true
}

/**
 * A buildhaus.json whose platforms are selector strings and whose replicas is
 * one count (label arrays and counts per platform are the schema's to check),
 * as spec.ts's schema would accept it: what `submit` reads before it sends
 * anything, without loading zod for the common case.
 */
export function jobSpecAccepted (spec: unknown): boolean {
  if (!plain(spec, SPEC) || !isLine(spec.name, MAX_JOB_NAME_LENGTH) || !isSteps(spec.steps)) return false
  const platforms = spec.platforms
  if (platforms !== undefined) {
    if (!Array.isArray(platforms) || platforms.length < 1 || platforms.length > MAX_PLATFORMS) return false
    const selectors = new Set<string>()
    for (const platform of platforms) {
      if (typeof platform !== 'string') return false
      let selector: string
      try {
        selector = parseSelector(platform).join('+')
      } catch {
        return false
      }
      if (selectors.has(selector)) return false
      selectors.add(selector)
    }
  }
  if (spec.replicas !== undefined && !isInt(spec.replicas, 1, MAX_REPLICAS)) return false
  if ((spec.artifacts !== undefined && !isGlobs(spec.artifacts)) || (spec.independent !== undefined && !isGlobs(spec.independent))) return false
  if (spec.timeout !== undefined && !isInt(spec.timeout, MIN_TIMEOUT_S, MAX_TIMEOUT_S)) return false
  if (spec.resources !== undefined && !isLimits(spec.resources)) return false
  if ((spec.network !== undefined && typeof spec.network !== 'boolean') || (spec.root !== undefined && typeof spec.root !== 'boolean')) return false
  const environment = spec.environment
  const environments: unknown = environment === undefined ? [] : typeof environment === 'string' ? [environment] : environment
  if (!Array.isArray(environments) || (Array.isArray(environment) && (environment.length < 1 || environment.length > MAX_PLATFORMS))) return false
  const named = new Set<unknown>()
  for (const name of environments) {
    if (typeof name !== 'string' || environmentNameProblem(name) !== undefined || named.has(name)) return false
    named.add(name)
  }
  const packages = spec.packages
  if (packages !== undefined) {
    if (!Array.isArray(packages) || packages.length < 1 || packages.length > MAX_REQUESTED_PACKAGES) return false
    for (const name of packages) if (typeof name !== 'string' || packageNameProblem(name) !== undefined) return false
    // Packages go into an environment, never onto a builder's own system.
    if (named.size === 0 || named.has(HOST_ENVIRONMENT)) return false
  }
  return true
}
