import { trace, tracing } from '../util/trace.js'
import { componentLogger } from '../util/logger.js'
import { StepProcess, warmStepInput, type StepProcessOptions } from './step-process.js'

const log = componentLogger('sandbox:warm')

/** How long a hand-over waits for the sandbox to be set up, and then for its shell to take the command, before the step is launched fresh instead. */
const HAND_OVER_MS = 5000

/**
 * A step's sandbox started before its command is known, so that setting it
 * up (bwrap's namespaces and mounts, ~20–30 ms) is off the run's critical
 * path. It is started with the argv a fresh step of the run would get, but
 * for the inner shell (WARM_INNER_WRAPPER), which signals the sandbox is up
 * and then waits on stdin for SOURCE_DATE_EPOCH and the command, and execs
 * `/bin/sh -c <command>` as a fresh step's inner shell does. A run uses it
 * only when its own argv is the same (fits), and only for its first step.
 */
export class WarmStep {
  private readonly proc: StepProcess
  private state: 'waiting' | 'handing-over' | 'given' | 'discarded' = 'waiting'
  private discarded: Promise<void> | undefined

  /** `argv` ends in `/bin/sh -c`: the command is appended by the inner shell. */
  constructor (private readonly argv: readonly string[], options: StepProcessOptions) {
    this.proc = new StepProcess([...argv], { ...options, commandInput: true })
  }

  get pid (): number | undefined { return this.proc.pid }

  /** Resolves true once the sandbox is set up and waits for its command, false if it never will. */
  get started (): Promise<boolean> { return this.proc.started }

  /** Whether a step launched with `argv` (also ending before its command) would get exactly this sandbox. */
  fits (argv: readonly string[]): boolean {
    return this.state === 'waiting' && argv.length === this.argv.length && argv.every((arg, i) => arg === this.argv[i])
  }

  /**
   * Give the sandbox its command: the step's process once its shell has
   * taken it, or undefined when it cannot be used (not set up in time, gone,
   * it printed something of its own, or used already); it is then discarded
   * and the caller launches the step fresh. Never throws.
   */
  async handOver (run: string, sourceDateEpoch: number | undefined): Promise<StepProcess | undefined> {
    if (this.state !== 'waiting') return undefined
    if (tracing) trace('wh-start', 'sb')
    this.state = 'handing-over'
    const { proc } = this
    const epoch = sourceDateEpoch === undefined ? '' : String(sourceDateEpoch)
    // The inner shell takes digits only (what bwrap's --setenv would have set is not checked there).
    const problem = !/^\d*$/.test(epoch)
      ? 'SOURCE_DATE_EPOCH is not a whole number'
      : await within(proc.started, HAND_OVER_MS) !== true
        ? 'it was not set up in time'
        : proc.child.exitCode !== null || proc.child.signalCode !== null || proc.spawnError !== undefined
          ? 'it is gone'
          // bwrap says nothing when it sets up a sandbox: anything said was not the step's, and not seen scrubbed.
          : proc.output.readableLength !== 0 ? 'it printed something' : undefined
    if (problem !== undefined) {
      log('the warm sandbox (pid %d) cannot be used (%s); launching the step fresh', proc.pid, problem)
      await this.discard()
      return undefined
    }
    if (tracing) trace('wh-ready', 'sb')
    proc.input!.end(warmStepInput(epoch, run))
    // (Discarded meanwhile: the executor is closing.)
    if (await within(proc.commandTaken, HAND_OVER_MS) !== true || this.state !== 'handing-over') {
      log('the warm sandbox (pid %d) did not take its command; launching the step fresh', proc.pid)
      await this.discard()
      return undefined
    }
    if (tracing) trace('wh-taken', 'sb')
    this.state = 'given'
    return proc
  }

  /** Kill the unused sandbox and wait until its processes are gone. Idempotent; a used one is the step's, not touched. */
  async discard (): Promise<void> {
    if (this.state === 'given') return
    this.state = 'discarded'
    this.discarded ??= (async () => {
      this.proc.input?.destroy()
      if (!await this.proc.kill()) log.error('a warm sandbox (pid %d) did not die within 10 s of SIGKILL', this.proc.pid)
      this.proc.output.destroy()
    })()
    await this.discarded
  }
}

/** `promise`'s value, or undefined if it takes longer than `ms`. (A plain timer: aborting one made with a signal costs a DOMException and its stack, on every step.) */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}
