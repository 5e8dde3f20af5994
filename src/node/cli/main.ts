import { BuildhausError, UsageError } from '../../util/errors.js'
import { packageVersion } from '../../util/package-root.js'
import { sourceStack } from '../../util/source-stack.js'
import type { CliIO } from './command.js'
import { commands } from './commands/index.js'
import { formatHelp, parseCommandLine } from './parse.js'

/**
 * Run the CLI. Exit codes: 0 success, 1 failure (including "the check found a
 * problem"), 2 usage error, 3 timed out waiting for a verdict.
 */
export async function main (argv: string[], io?: Partial<CliIO>): Promise<number> {
  const controller = new AbortController()
  const stop = (): void => { controller.abort(new BuildhausError('interrupted')) }
  const ownSignals = io?.signal === undefined
  // An error nobody caught ends the process; before Node prints its stack (in the bundle's terms), say where it came from in the sources.
  const uncaught = (err: unknown): void => { if (err instanceof Error && err.stack !== undefined) process.stderr.write(`buildhaus-node: uncaught error, in the sources' terms: ${sourceStack(err.stack)}\n`) }
  if (ownSignals) {
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    process.on('uncaughtExceptionMonitor', uncaught)
    if (io?.stdout === undefined) quietWhenStdoutCloses(controller)
  }
  const cli: CliIO = {
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    env: io?.env ?? process.env,
    signal: io?.signal ?? controller.signal
  }
  try {
    const parsed = parseCommandLine(argv, commands)
    if ('version' in parsed) {
      cli.stdout.write(`buildhaus-node ${packageVersion()}\n`)
      return 0
    }
    if ('help' in parsed) {
      cli.stdout.write(formatHelp(commands, parsed.command))
      return 0
    }
    return await parsed.command.run(parsed.values, parsed.positionals, cli)
  } catch (err) {
    if (err instanceof UsageError) {
      cli.stderr.write(`buildhaus-node: ${err.message}\n`)
      return 2
    }
    if (err instanceof BuildhausError) {
      cli.stderr.write(`buildhaus-node: ${err.message}\n`)
      return 1
    }
    cli.stderr.write(`buildhaus-node: unexpected error: ${err instanceof Error ? (err.stack === undefined ? err.message : sourceStack(err.stack)) : String(err)}\n`)
    return 1
  } finally {
    if (ownSignals) {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      process.off('uncaughtExceptionMonitor', uncaught)
    }
  }
}

/**
 * `buildhaus-node audit FILE | head`: once the reader of standard output has
 * gone, every further write fails with EPIPE, which Node raises as an
 * uncaught error with a stack. What was left to print is not wanted: the
 * command ends as it would have (its exit code says what it found), a
 * command that watches stops, and nothing is printed about the pipe.
 * Left in place after main returns: writes still queued fail after it.
 */
function quietWhenStdoutCloses (controller: AbortController): void {
  if (process.stdout.listenerCount('error') > 0) return
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err
    controller.abort(new BuildhausError('standard output was closed'))
  })
}
