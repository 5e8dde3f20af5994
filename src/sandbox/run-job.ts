import { StringDecoder } from 'node:string_decoder'
import { UnsafeArchiveError, unpackTarball, type UnpackResult } from '../archive/index.js'
import { describeError, InvalidInputError } from '../util/errors.js'
import { componentLogger } from '../util/logger.js'
import { delay } from '../util/wait.js'
import { collectArtifacts } from './artifacts.js'
import { DISK_POLL_MS, DiskPace } from './disk-pace.js'
import { diskUsage } from './disk-usage.js'
import { SandboxRunError } from './errors.js'
import { environmentFingerprint } from './host.js'
import { assertValidLimits, describeLimit, MiB } from './limits.js'
import { BoundedLog } from './log-buffer.js'
import type { StepExit, StepProcess } from './step-process.js'
import type { CollectedArtifact, EnvironmentFingerprint, RunOutcome, RunRequest, RunStatus, Step, StepOutcome } from './types.js'
import { HostPaths } from './sanitize.js'
import { exitViolation, limitViolation, type Violation } from './violations.js'
import { createWorkspace, type Workspace, type WorkspaceOptions } from './workspace.js'
import { trace, tracing } from '../util/trace.js'

const log = componentLogger('sandbox:run')

/** Most artifact files one run may yield. */
const MAX_ARTIFACTS = 10_000
/** How long to wait for a step's output to close after it exited (a leftover writer under `none`). */
const OUTPUT_GRACE_MS = 2000

/** One run as a sandbox implementation prepares it. */
export interface PreparedRun {
  /** Start a step (a backend may hand it to a process started ahead, which can take a moment). */
  launch: (step: Step) => StepProcess | Promise<StepProcess>
  /** Limits the kernel enforced or a poll sees; called every pollMs while a step runs, and once after. */
  check: (step: StepProcess) => Promise<Violation | undefined>
  stepEnded: () => void
  /** Whether processes of a step that exited this way may still be running (and must be hunted down). */
  mayLeaveProcesses: (exit: StepExit) => boolean
  /** Directories whose disk use counts against the workspace limit. */
  diskDirs: string[]
  release: () => Promise<void>
}

/** What differs between sandboxes; everything else (steps, log, limits, artifacts) is shared. */
export interface SandboxBackend {
  readonly pollMs: number
  /** The node shares its uid with the builds (so it may have to restore permissions a build removed). */
  readonly sharesUidWithBuilds: boolean
  workspaceOptions: () => WorkspaceOptions
  /** A workspace made ahead of time for the request's workRoot (default: one made now with workspaceOptions()). */
  takeWorkspace?: (request: RunRequest) => Promise<Workspace>
  prepare: (request: RunRequest, workspace: Workspace) => Promise<PreparedRun>
  /** The run ended before prepare() was called or while it failed: release what was made ahead with the workspace. */
  abandon?: (workspace: Workspace) => Promise<void>
  fingerprint: () => Promise<EnvironmentFingerprint>
}

/** Most entries the workspace may hold: one per 4 KiB of its size, and never fewer than 10,000. */
export function workspaceEntryLimit (workspaceMb: number): number {
  return Math.max(10_000, workspaceMb * 256)
}

/**
 * Run a job's steps in order in a fresh workspace: unpack the source, run
 * each step (stopping at the first failure or limit), then collect the
 * artifacts when the steps ran to a verdict (pass or fail: a failed build's
 * outputs help to debug it).
 */
export async function runJob (backend: SandboxBackend, request: RunRequest): Promise<RunOutcome> {
  assertValidLimits(request.limits)
  for (const step of request.steps) {
    if (typeof step.name !== 'string' || typeof step.run !== 'string' || step.run.includes('\0')) {
      throw new InvalidInputError('each step needs a name and a run command line (without NUL characters)')
    }
  }
  const start = Date.now()
  const env = request.rootfs === undefined ? await backend.fingerprint() : environmentFingerprint(await backend.fingerprint(), request.rootfs)
  const paths = new HostPaths().add(request.workRoot, '<work>')
  const session = new RunSession(backend, request, paths)
  let workspace: Workspace
  try {
    workspace = backend.takeWorkspace !== undefined ? await backend.takeWorkspace(request) : await createWorkspace(request.workRoot, backend.workspaceOptions())
  } catch (err) {
    throw new SandboxRunError(`cannot make a workspace: ${paths.fault(err)}`, { cause: err })
  }
  if (tracing) trace('sb-workspace', 'sb')
  paths.add(workspace.runDir, '<run>').add(workspace.stageDir, '<run>').add(workspace.buildDir, '<workspace>')
  let disposed: Promise<void> | undefined
  const dispose = async (): Promise<void> => { disposed ??= workspace.remove(); await disposed }
  try {
    await session.run(workspace)
  } catch (err) {
    await dispose().catch((removal: unknown) => { log.error('could not remove a failed run\'s workspace: %s', describeError(removal)) })
    // Whatever went wrong is the node's, not the job's; it may be written into a result: no host paths.
    throw err instanceof SandboxRunError ? err : new SandboxRunError(paths.fault(err), { cause: err })
  }
  const { log: bytes, truncated } = session.log.finish()
  return {
    status: session.status,
    ...(session.reason === undefined ? {} : { reason: session.reason }),
    steps: session.steps,
    log: bytes,
    logTruncated: truncated,
    artifacts: session.artifacts,
    start,
    end: Date.now(),
    env,
    dispose
  }
}

class RunSession {
  readonly log: BoundedLog
  status: RunStatus = 'pass'
  reason: string | undefined
  steps: StepOutcome[] = []
  artifacts: CollectedArtifact[] = []

  constructor (private readonly backend: SandboxBackend, private readonly request: RunRequest, private readonly paths: HostPaths) {
    this.log = new BoundedLog(request.limits.logKb * 1024)
  }

  /** A line of buildhaus's own in the log (never counted as the job's output). */
  say (text: string): void {
    const line = `${this.log.atLineStart ? '' : '\n'}${text}\n`
    this.log.append(Buffer.from(line))
    this.live(line)
  }

  /** Hand text to the caller's live log; a throwing listener must not break the run. */
  live (text: string): void {
    if (this.request.onLog === undefined || text === '') return
    try {
      this.request.onLog(text)
    } catch (err) {
      log.error('the onLog listener threw: %e', err)
    }
  }

  end (violation: Violation): void {
    this.status = violation.status
    this.reason = violation.reason
    this.say(`[buildhaus: run ended: ${violation.reason}]`)
  }

  async run (workspace: Workspace): Promise<void> {
    const { request } = this
    let prepared: PreparedRun | undefined
    try {
      prepared = await this.setUp(workspace)
    } finally {
      // What the backend made ahead with the workspace (a cgroup, a sandbox waiting) goes at once, not with the workspace.
      if (prepared === undefined) await this.backend.abandon?.(workspace)
    }
    if (prepared === undefined) return
    try {
      const deadline = Date.now() + request.limits.wallSeconds * 1000
      for (const step of request.steps) {
        if (Date.now() >= deadline) return this.end(limitViolation(request.limits, 'wallSeconds'))
        const { outcome, violation } = await this.step(step, prepared, deadline)
        this.steps.push(outcome)
        if (violation !== undefined) return this.end(violation)
        if (outcome.exit !== 0) {
          this.status = 'fail'
          break
        }
      }
    } finally {
      await prepared.release()
    }

    let collection
    try {
      collection = await collectArtifacts(workspace.buildDir, request.artifacts, workspace.artifactsDir, {
        maxFiles: MAX_ARTIFACTS,
        reopenUnreadable: this.backend.sharesUidWithBuilds
      })
    } catch (err) {
      return this.end({ status: 'error', reason: `artifacts could not be collected (${this.paths.fault(err)})` })
    }
    for (const note of collection.notes) this.say(`[artifacts: ${note}]`)
    for (const artifact of collection.artifacts) this.say(`[artifact ${artifact.path}: ${artifact.size} bytes, sha256 ${artifact.sha256}]`)
    this.artifacts = collection.artifacts
  }

  /** Unpack the source, hand it to the build user, prepare the sandbox: the prepared run, or undefined when the run ended already. */
  private async setUp (workspace: Workspace): Promise<PreparedRun | undefined> {
    const { request } = this
    if (request.signal?.aborted === true) {
      this.end({ status: 'error', reason: 'cancelled' })
      return undefined
    }
    let unpacked: UnpackResult
    try {
      unpacked = await unpackTarball(request.source, workspace.buildDir, {
        maxBytes: request.limits.workspaceMb * MiB,
        maxFiles: workspaceEntryLimit(request.limits.workspaceMb)
      })
    } catch (err) {
      if (!(err instanceof UnsafeArchiveError)) throw err
      this.say(`[buildhaus: the source archive was refused: ${err.message}]`)
      this.end({ status: 'error', reason: `unsafe source archive (${err.reason})` })
      return undefined
    }
    if (tracing) trace('sb-unpacked', 'sb')
    await workspace.handOver(unpacked.files)
    const prepared = await this.backend.prepare(request, workspace)
    if (tracing) trace('sb-prepared', 'sb')
    return prepared
  }

  private async step (step: Step, prepared: PreparedRun, deadline: number): Promise<{ outcome: StepOutcome, violation?: Violation }> {
    const { request } = this
    const { limits } = request
    this.say(`$ ${step.run}`)
    const began = performance.now()
    const proc = await prepared.launch(step)
    if (tracing) trace('sb-launched', 'sb')
    let violation: Violation | undefined
    let killing: Promise<boolean> | undefined
    const stop = (reason: Violation): void => {
      if (violation !== undefined) return
      violation = reason
      killing = proc.kill()
    }

    const decoder = new StringDecoder('utf8')
    const outputLimit = limits.outputMb * MiB
    let outputBytes = 0
    // Until the step's command starts, what comes out is bwrap's own (an error naming host paths): scrubbed.
    let started = false
    proc.started.then((yes) => { started = yes }, () => {})
    const onOutput = (raw: Buffer): void => {
      if (outputBytes > outputLimit) return
      const chunk = started ? raw : Buffer.from(this.paths.scrub(raw.toString('utf8')))
      outputBytes += chunk.length
      const kept = outputBytes > outputLimit ? chunk.subarray(0, chunk.length - (outputBytes - outputLimit)) : chunk
      this.log.append(kept)
      this.live(decoder.write(kept))
      if (outputBytes > outputLimit) stop(limitViolation(limits, 'outputMb'))
    }
    proc.output.on('data', onOutput)
    const outputClosed = new Promise<void>((resolve) => { proc.output.once('close', resolve) })

    const wallTimer = setTimeout(() => { stop(limitViolation(limits, 'wallSeconds')) }, Math.max(0, deadline - Date.now()))
    const onAbort = (): void => { stop({ status: 'error', reason: 'cancelled' }) }
    request.signal?.addEventListener('abort', onAbort, { once: true })
    // (Cancelled while the step was being launched.)
    if (request.signal?.aborted === true) onAbort()

    const watching = new AbortController()
    // false once the step is over.
    const pause = async (ms: number): Promise<boolean> => !watching.signal.aborted &&
      await delay(ms, watching.signal).then(() => !watching.signal.aborted, () => false)
    const pollLimits = (async () => {
      while (await pause(this.backend.pollMs)) {
        const found = await prepared.check(proc).catch((err: unknown) => { log.error('limit check failed: %e', err) })
        if (found !== undefined) stop(found)
      }
    })()
    // Not at once: the unpacked source was bounded by the unpack, and a step that ends sooner gets the strict walk below.
    const pollDisk = (async () => {
      const pace = new DiskPace(prepared.diskDirs, { maxBytes: limits.workspaceMb * MiB, maxEntries: workspaceEntryLimit(limits.workspaceMb) })
      while (await pause(DISK_POLL_MS)) {
        if (!await pace.due(performance.now())) continue
        await pace.walkStarting()
        const began = performance.now()
        const measured = await this.measureWorkspace(prepared.diskDirs, false).catch((err: unknown) => { log.error('disk check failed: %e', err) })
        if (measured === undefined) continue
        pace.walked(measured, performance.now() - began, performance.now())
        if (measured.violation !== undefined) stop(measured.violation)
      }
    })()

    const exit = await proc.exited
    if (tracing) trace('sb-exited', 'sb')
    log('step %s exited %o%s', step.name, exit, violation === undefined ? '' : ` (${violation.reason})`)
    // Output can still be in flight after the exit; a writer left behind (only possible without bubblewrap) is not waited for.
    await Promise.race([outputClosed, delay(OUTPUT_GRACE_MS)])
    watching.abort()
    clearTimeout(wallTimer)
    request.signal?.removeEventListener('abort', onAbort)
    await Promise.all([pollLimits, pollDisk])
    // Whatever the step left behind goes with it.
    const cleaned = killing !== undefined ? await killing : prepared.mayLeaveProcesses(exit) ? await proc.kill() : true
    if (!cleaned) this.say('[buildhaus: warning: some processes of this step did not die within 10 s of SIGKILL]')
    proc.output.destroy()
    this.live(decoder.end())

    const ms = Math.round(performance.now() - began)
    const outcome: StepOutcome = { name: step.name, exit: exit.code, ms }
    if (exit.signal !== null) outcome.signal = exit.signal

    if (violation === undefined) {
      if (proc.spawnError !== undefined) {
        violation = { status: 'error', reason: `sandbox failed to start: ${this.paths.fault(proc.spawnError)}` }
      } else if (!await proc.started) {
        violation = { status: 'error', reason: `sandbox failed to start: ${this.paths.scrub(lastLine(this.log))}` }
      } else {
        violation = await prepared.check(proc).catch(() => undefined) ??
          exitViolation(limits, exit.code, exit.signal) ??
          (await this.measureWorkspace(prepared.diskDirs, true)).violation
      }
    }
    prepared.stepEnded()
    if (tracing) trace('sb-checked', 'sb')
    const how = exit.code !== null ? `exit ${exit.code}` : `killed by ${exit.signal ?? 'an unknown signal'}`
    this.say(`[step ${step.name}: ${how}, ${ms} ms]`)
    return violation === undefined ? { outcome } : { outcome, violation }
  }

  /**
   * Measure the workspace against its limit. While a step runs (`strict`
   * false) entries vanishing under the walk are normal (a build's temporary
   * files): what was counted still counts, and a walk cut short is not held
   * against the job. Once the step is over nothing in the sandbox can change
   * the tree, and a walk that cannot see all of it is a violation: a tree
   * that cannot be measured never passes.
   */
  private async measureWorkspace (dirs: string[], strict: boolean): Promise<{ bytes: number, entries: number, violation?: Violation }> {
    const { limits } = this.request
    const maxBytes = limits.workspaceMb * MiB
    const maxEntries = workspaceEntryLimit(limits.workspaceMb)
    let bytes = 0
    let entries = 0
    for (const dir of dirs) {
      const usage = await diskUsage(dir, { maxBytes: maxBytes - bytes, maxEntries: maxEntries - entries, reopenUnreadable: this.backend.sharesUidWithBuilds })
      bytes += usage.bytes
      entries += usage.entries
      if (bytes > maxBytes || entries > maxEntries) return { bytes, entries, violation: limitViolation(limits, 'workspaceMb') }
      if (!usage.complete && strict) return { bytes, entries, violation: { status: 'error', reason: `${describeLimit('workspaceMb', limits.workspaceMb)}: the workspace could not be measured (${usage.problem ?? 'unknown'})` } }
    }
    return { bytes, entries }
  }
}

/** The last non-empty line of the log so far, for a one-line reason (bwrap's own error message). */
function lastLine (log: BoundedLog): string {
  const text = log.finish().log.toString('utf8')
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('$ '))
  const last = lines.at(-1) ?? 'no message'
  return last.length > 300 ? `${last.slice(0, 300)}…` : last
}
