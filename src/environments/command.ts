import { StringDecoder } from 'node:string_decoder'
import { startHostProcess } from '../sandbox/host-process.js'
import { EnvironmentCreationError } from './errors.js'

/** The PATH tools are looked up on, whatever the node's own environment says. */
export const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Lines of a tool's output kept to explain its failure. */
const KEPT_LINES = 40
/** Longest line handed on or kept (a progress bar without newlines must not grow without end). */
const MAX_LINE = 2000

export interface CommandOptions {
  /** Every line the command prints (stdout and stderr together), as it prints it. */
  onLine?: (line: string) => void
  signal?: AbortSignal
  timeoutMs: number
  env?: Record<string, string>
  cwd?: string
}

export interface CommandResult {
  code: number | null
  signal: NodeJS.Signals | null
  /** The last lines it printed. */
  tail: string[]
}

/**
 * Run a tool to its end, in its own process group (killed whole on abort or
 * timeout), passing its output on line by line and keeping the last lines.
 * Never throws for a non-zero exit: the caller decides what that means.
 */
export async function runCommand (file: string, args: string[], options: CommandOptions): Promise<CommandResult> {
  options.signal?.throwIfAborted()
  const child = startHostProcess(file, args, {
    cwd: options.cwd ?? '/',
    env: options.env ?? { PATH: TOOL_PATH, LANG: 'C.UTF-8' },
    stdout: 'pipe',
    stderr: 'pipe'
  })
  const tail: string[] = []
  const decoders = [new StringDecoder('utf8'), new StringDecoder('utf8')]
  const pending = ['', '']
  const emit = (line: string): void => {
    const text = line.replace(/\r/g, '').slice(0, MAX_LINE)
    if (text.trim() === '') return
    tail.push(text)
    if (tail.length > KEPT_LINES) tail.shift()
    options.onLine?.(text)
  }
  const feed = (i: number) => (chunk: Buffer): void => {
    pending[i] += decoders[i]!.write(chunk)
    let newline: number
    while ((newline = pending[i]!.indexOf('\n')) >= 0) {
      emit(pending[i]!.slice(0, newline))
      pending[i] = pending[i]!.slice(newline + 1)
    }
    if (pending[i]!.length > MAX_LINE) {
      emit(pending[i]!)
      pending[i] = ''
    }
  }
  child.stdout!.on('data', feed(0))
  child.stderr!.on('data', feed(1))
  const kill = (): void => { child.kill('SIGKILL', { group: true }) }
  const timer = setTimeout(kill, options.timeoutMs)
  options.signal?.addEventListener('abort', kill, { once: true })
  try {
    const exit = await child.closed.catch((err: Error) => { throw new EnvironmentCreationError(`cannot run ${file}: ${err.message}`) })
    for (let i = 0; i < 2; i++) emit(pending[i]! + decoders[i]!.end())
    options.signal?.throwIfAborted()
    return { ...exit, tail }
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', kill)
  }
}

/** One line saying how a command ended, with its last words: `exit 100: E: Unable to locate package foo`. */
export function describeFailure (result: CommandResult, lines = 3): string {
  const how = result.code !== null ? `exit ${result.code}` : `killed by ${result.signal ?? 'a signal'}`
  const last = result.tail.slice(-lines).join(' / ')
  return last === '' ? how : `${how}: ${last}`
}
