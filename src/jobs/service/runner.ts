import { MAX_SOURCE_BYTES } from '../../archive/index.js'
import { blobHashOf } from '../../blobs/hash.js'
import { packageNameProblem, packageVersions, type EnvironmentLease } from '../../environments/index.js'
import type { Executor, RunOutcome, SandboxLimits } from '../../sandbox/index.js'
import { componentLogger } from '../../util/logger.js'
import { describeError } from '../../util/errors.js'
import { trace, tracing } from '../../util/trace.js'
import type { Artifact, ResultBody, ResultEnvironment, ResultStatus } from '../bodies.js'
import { MAX_ENV_FIELD_LENGTH, MAX_ENV_TOOLS, MAX_PACKAGE_VERSION_LENGTH, MAX_REASON_LENGTH, MAX_RESULT_ARTIFACTS, MAX_RESULT_PACKAGES, MAX_TOOL_NAME_LENGTH } from '../constants.js'
import { ENVIRONMENT_REFUSAL_PREFIX, SOURCE_REFUSAL_PREFIX } from '../scheduler.js'
import type { JobView } from '../view.js'
import type { BlobFetcher, JobBlobs, JobEnvironments } from './ports.js'

const log = componentLogger('jobs:runner')

/** How long a builder keeps trying to get a job's source before it releases the slot (a refusal). */
export const SOURCE_FETCH_DEADLINE_MS = 60_000

export interface RunSlotOptions {
  job: JobView
  platform: string
  limits: SandboxLimits
  executor: Executor
  /** Where environments come from; undefined: this node builds on its host only. */
  environments?: JobEnvironments
  blobs: JobBlobs
  fetcher: BlobFetcher
  /** Authors likely to hold the source, best first (the submitter, then builders). */
  sourceHolders: string[]
  workRoot: string
  signal: AbortSignal
  /** How long to keep asking for the source (default SOURCE_FETCH_DEADLINE_MS). */
  sourceDeadlineMs?: number
  onLog?: (text: string) => void
  /**
   * Removing the workspace is left to run after the result is returned (it
   * is not part of the result, and takes as long as a short build); the
   * caller gets the promise to wait for before it stops. Without this
   * option, runSlot waits for it.
   */
  onCleanup?: (done: Promise<void>) => void
}

/**
 * Build one claimed slot: get the source, run the steps in the sandbox, keep
 * the log and (for a pass) the artifacts as blobs, and return the `result`
 * body to publish. Never throws for the job's own failures: those are
 * statuses; it throws only when the run was cancelled.
 */
export async function runSlot (options: RunSlotOptions): Promise<ResultBody> {
  const { job, platform, blobs } = options
  const start = Date.now()
  if (tracing) trace('slot-start', job.id)
  let source: Buffer
  try {
    source = await obtainSource(options)
  } catch (err) {
    options.signal.throwIfAborted()
    // Not a vote on the build: a builder that never had the source releases the slot (a refusal,
    // never a ballot) so that another builder takes it. As an `error` it counted as a failure, and
    // a fetch timeout on a loaded mesh turned a good job into a mismatch.
    return { ...errorResult(job, platform, start, `${SOURCE_REFUSAL_PREFIX}${job.source.slice(0, 12)}…: ${describeError(err)}`, await options.executor.fingerprint()), status: 'refused' }
  }
  options.signal.throwIfAborted()
  if (tracing) trace('source', job.id)
  const environment = job.spec.platforms.find((p) => p.selector === platform)?.environment
  let lease: EnvironmentLease | undefined
  if (environment !== undefined) {
    const packages = job.spec.packages ?? []
    const wanted = `${environment}${packages.length > 0 ? ` + ${packages.join(', ')}` : ''}`
    try {
      if (options.environments === undefined) throw new Error('this node builds on its host only')
      options.onLog?.(`[buildhaus: preparing the environment ${wanted}]\n`)
      lease = await options.environments.acquire({
        name: environment,
        packages,
        signal: options.signal,
        ...(options.onLog !== undefined ? { onLine: (line: string) => { options.onLog!(`[environment: ${line}]\n`) } } : {})
      })
      // The manifest is a blob anyone can fetch by the hash the result records.
      await blobs.put(lease.manifestBytes, { pin: true })
    } catch (err) {
      await lease?.release()
      options.signal.throwIfAborted()
      // Not a vote on the build: unknown packages or an unreachable archive are the job's or the network's
      // problem, never a failed build. The slot goes to the next builder, and "why unclaimed" says this.
      return { ...errorResult(job, platform, start, `${ENVIRONMENT_REFUSAL_PREFIX}${wanted}: ${describeError(err)}`, await options.executor.fingerprint()), status: 'refused' }
    }
  }
  try {
    return await buildIn(options, source, start, lease)
  } finally {
    await lease?.release()
  }
}

/** Run the steps (in the leased environment, if any) and make the result body. */
async function buildIn (options: RunSlotOptions, source: Buffer, start: number, lease: EnvironmentLease | undefined): Promise<ResultBody> {
  const { job, platform, blobs } = options
  let outcome: RunOutcome
  try {
    if (tracing) trace('run-start', job.id)
    outcome = await options.executor.run({
      source,
      steps: job.spec.steps,
      artifacts: job.spec.artifacts,
      network: job.spec.network,
      root: job.spec.root,
      ...(lease !== undefined ? { rootfs: { path: lease.root, os: lease.os } } : {}),
      limits: options.limits,
      // Every builder of a job uses the job's own time: timestamps embedded by
      // well-behaved tools then agree across builders.
      sourceDateEpoch: Math.floor(job.time / 1000),
      workRoot: options.workRoot,
      signal: options.signal,
      ...(options.onLog !== undefined ? { onLog: options.onLog } : {})
    })
  } catch (err) {
    options.signal.throwIfAborted()
    return withEnvironment(errorResult(job, platform, start, withoutHostPaths(`the sandbox failed: ${describeError(err)}`, options.workRoot), await options.executor.fingerprint()), lease, job)
  }
  if (tracing) trace('run-end', job.id)
  let storingLog: Promise<void> | undefined
  try {
    options.signal.throwIfAborted()
    // The log is evidence, not a vote: it is not worth an fsync (two, with the directory's) between the
    // build's end and its result. A machine crash may lose it; the result's hash then finds it nowhere.
    // Nor worth a wait before the result: its hash is the bytes', and it is stored while the result is
    // signed and published (a peer asking for it in those few ms is told it is not here, as after a crash).
    const logBlob = { hash: blobHashOf(outcome.log), size: outcome.log.byteLength }
    storingLog = blobs.put(outcome.log, { durable: false }).then(() => {}, (err: unknown) => {
      log.error('could not keep the log of %s/%s: %s', job.id, platform, describeError(err))
    })
    // Only a pass publishes artifacts: partial outputs of failed builds would
    // turn two agreeing failures into a mismatch.
    const artifacts: Artifact[] = []
    if (outcome.status === 'pass') {
      for (const artifact of outcome.artifacts.slice(0, MAX_RESULT_ARTIFACTS)) {
        const stored = await blobs.putFile(artifact.file, { move: true })
        if (stored.hash !== artifact.sha256) throw new Error(`artifact ${artifact.path} changed while being stored`)
        artifacts.push({ path: artifact.path, sha256: stored.hash, size: stored.size })
      }
      artifacts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    }
    const tooMany = outcome.status === 'pass' && outcome.artifacts.length > MAX_RESULT_ARTIFACTS
    const status: ResultStatus = tooMany ? 'error' : outcome.status
    const reason = tooMany ? `more than ${MAX_RESULT_ARTIFACTS} artifacts matched the globs` : outcome.reason !== undefined ? withoutHostPaths(outcome.reason, options.workRoot) : undefined
    return {
      job: job.id,
      platform,
      status,
      ...(reason !== undefined ? { reason: reason.slice(0, MAX_REASON_LENGTH) } : {}),
      steps: outcome.steps.map((s) => ({ name: s.name, exit: s.exit, ...(s.signal !== undefined ? { signal: s.signal } : {}), ms: Math.round(s.ms) })),
      log: logBlob.hash,
      logSize: logBlob.size,
      artifacts: tooMany ? [] : artifacts,
      env: envOf(outcome),
      ...(lease !== undefined ? { environment: resultEnvironment(lease, job.spec.packages ?? []) } : {}),
      start: outcome.start,
      end: outcome.end
    }
  } finally {
    const disposed = outcome.dispose().catch((err: unknown) => { log.error('could not clean up the workspace of %s: %s', job.id, describeError(err)) })
    const cleanup = storingLog === undefined ? disposed : Promise.all([disposed, storingLog]).then(() => {})
    if (options.onCleanup !== undefined) options.onCleanup(cleanup)
    else await cleanup
  }
}

async function obtainSource (options: RunSlotOptions): Promise<Buffer> {
  const { job, blobs } = options
  if (!(await blobs.has(job.source))) {
    if (tracing) trace('fetch-start', job.id)
    const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.sourceDeadlineMs ?? SOURCE_FETCH_DEADLINE_MS)])
    let lastError: unknown
    // Holders may come and go (a partition, a restart): keep asking until the deadline.
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await options.fetcher.fetch(job.source, { fromAuthors: options.sourceHolders, maxBytes: MAX_SOURCE_BYTES, signal })
        lastError = undefined
        break
      } catch (err) {
        lastError = err
        log('fetching source %s failed (attempt %d): %s', job.source, attempt + 1, describeError(err))
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** attempt)))
      }
    }
    if (lastError !== undefined || !(await blobs.has(job.source))) throw lastError ?? new Error('no peer had it')
    if (tracing) trace('fetch-end', job.id)
  }
  return await blobs.readBytes(job.source, MAX_SOURCE_BYTES)
}

/**
 * Packages whose versions a result records besides the job's own: the
 * toolchain most builds depend on, when installed. The manifest (a blob)
 * lists every package; these let a verdict name differences on its own.
 */
const TOOLCHAIN_PACKAGES = ['libc6', 'musl', 'gcc', 'g++', 'binutils', 'make', 'dpkg-dev', 'debhelper', 'python3', 'perl']

/** What a result says of its environment: name, manifest hash, and the versions of the job's packages and the toolchain. */
export function resultEnvironment (lease: Pick<EnvironmentLease, 'hash' | 'manifest'>, requested: readonly string[]): ResultEnvironment {
  const versions = packageVersions(lease.manifest)
  const packages: Record<string, string> = {}
  for (const name of [...requested, ...TOOLCHAIN_PACKAGES]) {
    const version = versions.get(name)
    if (version === undefined || packageNameProblem(name) !== undefined || Object.keys(packages).length >= MAX_RESULT_PACKAGES) continue
    packages[name] = oneLine(version).slice(0, MAX_PACKAGE_VERSION_LENGTH)
  }
  return { name: lease.manifest.name, manifest: lease.hash, packages }
}

function withEnvironment (body: ResultBody, lease: EnvironmentLease | undefined, job: JobView): ResultBody {
  return lease === undefined ? body : { ...body, environment: resultEnvironment(lease, job.spec.packages ?? []) }
}

function envOf (outcome: Pick<RunOutcome, 'env'>): ResultBody['env'] {
  const env = outcome.env
  const tools: Record<string, string> = {}
  for (const [name, version] of Object.entries(env.tools)) {
    // Places kept for the sandbox's own features below (limits, seccomp).
    if (Object.keys(tools).length >= MAX_ENV_TOOLS - 2) break
    const field = oneLine(version)
    if (field !== '') tools[oneLine(name).slice(0, MAX_TOOL_NAME_LENGTH)] = field
  }
  if (env.limits !== undefined) tools.limits = env.limits
  // The system call filter the steps loaded (absent: none, and env.warning says why).
  if (env.seccomp !== undefined) tools.seccomp = oneLine(env.seccomp)
  const sandbox = env.sandbox === 'bubblewrap' && env.bwrap !== undefined ? `bubblewrap ${oneLine(env.bwrap)}` : env.sandbox
  return {
    os: oneLine(env.os) || 'unknown',
    kernel: oneLine(env.kernel) || 'unknown',
    arch: oneLine(env.arch) || 'unknown',
    sandbox: sandbox.slice(0, MAX_ENV_FIELD_LENGTH),
    tools,
    ...(env.warning !== undefined ? { warning: env.warning.slice(0, MAX_REASON_LENGTH) } : {})
  }
}

/** The first line of a tool's answer, without control characters, within the field bound. */
function oneLine (text: string): string {
  // eslint-disable-next-line no-control-regex -- removing them is the point
  return (text.split('\n')[0] ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, MAX_ENV_FIELD_LENGTH)
}

/**
 * A reason goes into the signed, replicated log: never the volunteer's own
 * paths. The workspace root (and anything under it) becomes `<workspace>`.
 */
export function withoutHostPaths (text: string, workRoot: string): string {
  if (workRoot === '' || workRoot === '/') return text
  return text.split(workRoot).join('<workspace>')
}

function errorResult (job: JobView, platform: string, start: number, reason: string, env: RunOutcome['env']): ResultBody {
  const end = Date.now()
  return {
    job: job.id,
    platform,
    status: 'error',
    reason: reason.slice(0, MAX_REASON_LENGTH),
    steps: [],
    log: null,
    logSize: 0,
    artifacts: [],
    env: envOf({ env }),
    start,
    end
  }
}

/** The sandbox limits a job asks for, in the sandbox's terms. */
export function requestedLimits (job: JobView): Partial<SandboxLimits> {
  const limits: Partial<SandboxLimits> = { wallSeconds: job.spec.timeout }
  if (job.spec.limits.memoryMb !== undefined) limits.memoryMb = job.spec.limits.memoryMb
  if (job.spec.limits.diskMb !== undefined) limits.workspaceMb = job.spec.limits.diskMb
  if (job.spec.limits.cpuSeconds !== undefined) limits.cpuSeconds = job.spec.limits.cpuSeconds
  if (job.spec.limits.processes !== undefined) limits.processes = job.spec.limits.processes
  return limits
}
