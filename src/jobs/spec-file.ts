import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { describeError } from '../util/errors.js'
import type { JobLimits, JobStep } from './bodies.js'
import { MAX_SPEC_FILE_BYTES, SPEC_FILE_NAME } from './constants.js'
import { JobSpecError } from './errors.js'
import { jobSpecAccepted } from './fast-bodies.js'
import { parseSelector } from './selector.js'

/**
 * Reading buildhaus.json, the job description in a submitted directory,
 * without loading zod when it need not: a file whose shape the hand-written
 * check (fast-bodies.ts, jobSpecAccepted) vouches for becomes a JobSpec here;
 * any other goes to spec.ts's schema, loaded then, which decides and names
 * what is wrong. Both make the same JobSpec (test/jobs/fast-spec.test.ts).
 */

/** buildhaus.json after validation; platforms are normalised label lists. */
export interface JobSpec {
  name: string
  /** Absent when the file leaves platforms to `--platform`. */
  platforms?: string[][]
  /** One count for every platform, or counts per selector name (others get the default). */
  replicas?: number | Record<string, number>
  steps: JobStep[]
  artifacts: string[]
  independent: string[]
  /** Seconds; absent when the file leaves it to `--timeout` or the default (DEFAULT_TIMEOUT_S). */
  timeout?: number
  resources: JobLimits
  network: boolean
  root: boolean
  /**
   * The environments to build in (`host`: the builder's own system), each
   * with every platform; absent: the host only, as before environments.
   */
  environment?: string[]
  /** Build dependencies installed into each environment before the steps (sorted, each once). */
  packages?: string[]
}

/** What the schema (or the hand-written check) accepted, platforms made label lists. */
export interface AcceptedSpec {
  name: string
  platforms?: string[][] | undefined
  replicas?: number | Record<string, number> | undefined
  steps: Array<{ name: string, run: string }>
  artifacts?: string[] | undefined
  independent?: string[] | undefined
  timeout?: number | undefined
  resources?: Partial<Record<keyof JobLimits, number | undefined>> | undefined
  network?: boolean | undefined
  root?: boolean | undefined
  environment?: string | string[] | undefined
  packages?: string[] | undefined
}

/** The JobSpec of an accepted buildhaus.json: defaults filled in, selectors and packages in their one form. */
export function jobSpecOf (spec: AcceptedSpec): JobSpec {
  let replicas: JobSpec['replicas']
  if (typeof spec.replicas === 'object') {
    replicas = {}
    for (const [key, count] of Object.entries(spec.replicas)) replicas[parseSelector(key).join('+')] = count
  } else {
    replicas = spec.replicas
  }
  const resources = Object.fromEntries(Object.entries(spec.resources ?? {}).filter(([, v]) => v !== undefined)) as JobLimits
  return {
    name: spec.name,
    ...(spec.platforms !== undefined ? { platforms: spec.platforms } : {}),
    ...(replicas !== undefined ? { replicas } : {}),
    steps: spec.steps.map((step): JobStep => ({ name: step.name, run: step.run })),
    artifacts: spec.artifacts ?? [],
    independent: spec.independent ?? [],
    ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
    resources,
    network: spec.network ?? false,
    root: spec.root ?? false,
    ...(spec.environment !== undefined ? { environment: typeof spec.environment === 'string' ? [spec.environment] : [...spec.environment] } : {}),
    ...(spec.packages !== undefined ? { packages: [...new Set(spec.packages)].sort() } : {})
  }
}

/** Validate the parsed JSON of a buildhaus.json, as spec.ts's validateJobSpec does (the schema is loaded only when needed). */
export async function checkJobSpec (value: unknown, file = SPEC_FILE_NAME): Promise<JobSpec> {
  if (jobSpecAccepted(value)) {
    const { platforms, ...rest } = value as Omit<AcceptedSpec, 'platforms'> & { platforms?: string[] }
    return jobSpecOf({ ...rest, ...(platforms !== undefined ? { platforms: platforms.map((selector) => parseSelector(selector)) } : {}) })
  }
  const { validateJobSpec } = await import('./spec.js')
  return validateJobSpec(value, file)
}

/** Read and validate `<dir>/buildhaus.json`, bounded in size. */
export async function readJobSpec (dir: string): Promise<JobSpec> {
  const path = join(dir, SPEC_FILE_NAME)
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new JobSpecError(`there is no ${SPEC_FILE_NAME} in ${dir}: add one describing the job's name, platforms and steps (see docs/JOBS.md)`)
    throw new JobSpecError(`cannot read ${path}: ${describeError(err)}`)
  }
  let text: string
  try {
    const buffer = Buffer.alloc(MAX_SPEC_FILE_BYTES + 1)
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
    if (bytesRead > MAX_SPEC_FILE_BYTES) throw new JobSpecError(`${path} is larger than ${MAX_SPEC_FILE_BYTES} bytes: a job description should be small`)
    text = buffer.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
  return await checkJobSpec(parseSpecJson(text, SPEC_FILE_NAME), SPEC_FILE_NAME)
}

/** The JSON of a buildhaus.json's text, or a JobSpecError naming the file. */
export function parseSpecJson (text: string, file = SPEC_FILE_NAME): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new JobSpecError(`${file}: not valid JSON (${describeError(err)})`)
  }
}
