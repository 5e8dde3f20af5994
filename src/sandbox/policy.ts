import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { describeError } from '../util/errors.js'
import { hostMaximums, type HostCapacity } from './capacity.js'
import { PolicyFileError } from './errors.js'
import { DEFAULT_LIMITS, HARD_MAXIMUMS, LIMIT_KEYS, limitProblem, MINIMUMS } from './limits.js'
import type { SandboxLimits } from './types.js'

/** What a volunteer lets run on their machine. */
export interface AdmissionPolicy {
  /** Accept jobs that ask for the network. */
  network: boolean
  /** Accept jobs that ask to be uid 0 inside the sandbox. */
  root: boolean
  /** The most any job may ask for. */
  maxLimits: SandboxLimits
  /** Hex public keys of the submitters whose jobs run here; absent = anyone. */
  submitters?: string[]
}

export interface JobRequirements {
  network: boolean
  root: boolean
  limits: Partial<SandboxLimits>
  /** The submitter's public key, hex. */
  submitter: string
}

export type Admission = { ok: true, limits: SandboxLimits } | { ok: false, reason: string }

/**
 * No network, uid 0 allowed (it is only namespaced), limits up to the hard
 * maximums: for tests and benchmarks. A node without a policy file gets
 * `defaultPolicy(host)`, whose maximums are capped by what its host has.
 */
export const DEFAULT_POLICY: Readonly<AdmissionPolicy> = Object.freeze({
  network: false,
  root: true,
  maxLimits: HARD_MAXIMUMS
})

/** What a node whose volunteer wrote no policy file admits: DEFAULT_POLICY with each maximum capped by the host (hostMaximums). */
export function defaultPolicy (host: HostCapacity): AdmissionPolicy {
  return { network: DEFAULT_POLICY.network, root: DEFAULT_POLICY.root, maxLimits: hostMaximums(host) }
}

/**
 * Decide whether this node runs a job, and with which limits: each limit the
 * job sets must be within the node's maximum, each it leaves out gets the
 * default (or the node's maximum when that is lower). A refusal's reason
 * starts with 'refused by policy: ' and names what was refused.
 */
export function admit (policy: AdmissionPolicy, job: JobRequirements): Admission {
  if (policy.submitters !== undefined && !policy.submitters.includes(job.submitter.toLowerCase())) {
    return refuse(`submitter ${job.submitter.slice(0, 16)}… is not on this node's list`)
  }
  if (job.network && !policy.network) return refuse('network')
  if (job.root && !policy.root) return refuse('root')
  const limits = {} as SandboxLimits
  for (const key of LIMIT_KEYS) {
    const asked = job.limits[key]
    const max = policy.maxLimits[key]
    if (asked === undefined) {
      limits[key] = Math.min(DEFAULT_LIMITS[key], max)
      continue
    }
    const problem = limitProblem(key, asked)
    if (problem !== undefined) return refuse(problem)
    if (asked > max) return refuse(`${key} ${asked} is over this node's maximum of ${max}`)
    limits[key] = asked
  }
  return { ok: true, limits }
}

function refuse (what: string): Admission {
  return { ok: false, reason: `refused by policy: ${what}` }
}

const limitSchema = (key: keyof SandboxLimits): z.ZodNumber => z.number()
  .int(`${key} must be a whole number`)
  .min(MINIMUMS[key], `${key} must be at least ${MINIMUMS[key]}`)
  .max(HARD_MAXIMUMS[key], `${key} must be at most ${HARD_MAXIMUMS[key]} (the hard maximum)`)

const policySchema = z.strictObject({
  network: z.boolean().optional(),
  root: z.boolean().optional(),
  maxLimits: z.strictObject(Object.fromEntries(LIMIT_KEYS.map((key) => [key, limitSchema(key).optional()])) as Record<keyof SandboxLimits, z.ZodOptional<z.ZodNumber>>).optional(),
  submitters: z.array(z.string().regex(/^[0-9a-fA-F]{64}$/, 'each submitter must be a 64-digit hex public key')).optional()
})

/**
 * Read the volunteer's policy file (JSON). A missing file means the defaults
 * (`defaultPolicy(host)`); limits left out of `maxLimits` are capped by the
 * host (hostMaximums), limits set there are the volunteer's word (up to the
 * hard maximums), even above what the host seems to have.
 */
export async function loadPolicy (path: string, host: HostCapacity): Promise<AdmissionPolicy> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return defaultPolicy(host)
    throw new PolicyFileError(`cannot read the policy file ${path}: ${describeError(err)}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new PolicyFileError(`the policy file ${path} is not valid JSON (${describeError(err)}); fix it, or delete it to use the defaults`)
  }
  const parsed = policySchema.safeParse(json)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''
      return `${where}${issue.message}`
    })
    throw new PolicyFileError(`the policy file ${path} is invalid: ${problems.join('; ')}; see docs/SANDBOX.md for the format`)
  }
  const policy: AdmissionPolicy = {
    network: parsed.data.network ?? DEFAULT_POLICY.network,
    root: parsed.data.root ?? DEFAULT_POLICY.root,
    maxLimits: hostMaximums(host)
  }
  for (const key of LIMIT_KEYS) {
    const value = parsed.data.maxLimits?.[key]
    if (value !== undefined) policy.maxLimits[key] = value
  }
  if (parsed.data.submitters !== undefined) policy.submitters = parsed.data.submitters.map((key) => key.toLowerCase())
  return policy
}
