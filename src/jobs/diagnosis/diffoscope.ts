import { accessSync, constants, statSync } from 'node:fs'
import { basename, delimiter, join } from 'node:path'
import type { Readable } from 'node:stream'
import { HostPaths } from '../../sandbox/sanitize.js'
import { toolSandbox, ToolSandbox, type ToolRun } from '../../sandbox/tool-sandbox.js'
import { DIFFOSCOPE_DATA_BYTES, DIFFOSCOPE_TMP_BYTES, MAX_TOOL_STDERR_BYTES } from './constants.js'

/** The first executable called `name` on PATH, if any. */
export function findOnPath (name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

export type ToolOutcome =
  | { ok: true, text: string, truncated: boolean, exitCode: number | null }
  | { ok: false, reason: string }

/** Where the two artifacts appear inside diffoscope's sandbox, each under its own name (the report names them so). */
export const SANDBOX_INPUTS = { a: '/in/A', b: '/in/B' } as const
/** Where the diffoscope executable appears inside its sandbox. */
const SANDBOX_TOOL = '/tool/diffoscope'

/** The report is published: bwrap's and the staging's errors name the node's paths, which are none of the mesh's business. */
const HOST_PATHS = new HostPaths()

export interface DiffoscopeOptions {
  timeoutMs: number
  maxBytes: number
  /** bwrap to confine diffoscope with (default: found on the system PATH). */
  bwrapPath?: string
  /** Data each process in the sandbox may take (default DIFFOSCOPE_DATA_BYTES). */
  memoryBytes?: number
}

/**
 * Run diffoscope on two files for a text report, in a bubblewrap sandbox of
 * its own (src/sandbox/tool-sandbox.ts): the files are a stranger's, and
 * diffoscope unpacks them with many tools. Never without one: no bwrap, no
 * diffoscope. No shell is involved (the paths are plain arguments), the
 * whole sandbox is killed at the time limit, and output past `maxBytes` is
 * not kept: the tool is stopped there and the report marked truncated.
 */
export async function runDiffoscope (executable: string, pathA: string, pathB: string, options: DiffoscopeOptions): Promise<ToolOutcome> {
  const began = Date.now()
  const sandbox = await toolSandbox(options.bwrapPath)
  if (!(sandbox instanceof ToolSandbox)) return { ok: false, reason: `diffoscope not run: it runs only in a bubblewrap sandbox, and ${sandbox.unavailable}` }
  const insideA = join(SANDBOX_INPUTS.a, basename(pathA))
  const insideB = join(SANDBOX_INPUTS.b, basename(pathB))
  let run: ToolRun
  try {
    run = await sandbox.start({
      argv: [SANDBOX_TOOL, '--text', '-', '--max-text-report-size', String(options.maxBytes), '--', insideA, insideB],
      inputs: [{ path: executable, at: SANDBOX_TOOL }, { path: pathA, at: insideA }, { path: pathB, at: insideB }],
      tmpBytes: DIFFOSCOPE_TMP_BYTES,
      dataBytes: options.memoryBytes ?? DIFFOSCOPE_DATA_BYTES
    })
  } catch (err) {
    return { ok: false, reason: `could not set up diffoscope's sandbox: ${HOST_PATHS.fault(err)}` }
  }
  try {
    return await collect(run, Math.max(0, options.timeoutMs - (Date.now() - began)), options)
  } finally {
    await run.dispose().catch(() => {})
  }
}

async function collect (run: ToolRun, timeLeftMs: number, options: DiffoscopeOptions): Promise<ToolOutcome> {
  const stdout: Buffer[] = []
  let stdoutBytes = 0
  let stderr = ''
  let truncated = false
  let timedOut = false
  let killing: Promise<unknown> | undefined
  const kill = (): void => { killing ??= run.kill() }
  const timer = setTimeout(() => {
    timedOut = true
    kill()
  }, timeLeftMs)
  run.stdout.on('data', (chunk: Buffer) => {
    if (truncated) return
    const room = options.maxBytes - stdoutBytes
    if (chunk.byteLength > room) {
      stdout.push(chunk.subarray(0, room))
      stdoutBytes += room
      truncated = true
      kill()
      return
    }
    stdout.push(chunk)
    stdoutBytes += chunk.byteLength
  })
  run.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < MAX_TOOL_STDERR_BYTES) stderr += chunk.toString('utf8').slice(0, MAX_TOOL_STDERR_BYTES - stderr.length)
  })
  // The report is whole once the process has exited and its pipes are closed (everything in the sandbox is gone).
  const [{ code }, started] = await Promise.all([run.exited, run.started, ended(run.stdout), ended(run.stderr)])
  clearTimeout(timer)
  await killing
  const text = Buffer.concat(stdout).toString('utf8')
  const spawnError = run.spawnError()
  if (spawnError !== undefined) return { ok: false, reason: `could not start diffoscope's sandbox: ${HOST_PATHS.fault(spawnError)}` }
  if (timedOut) return { ok: false, reason: `diffoscope was stopped after ${options.timeoutMs} ms` }
  if (truncated) return { ok: true, text, truncated: true, exitCode: code }
  if (!started) return { ok: false, reason: `diffoscope's sandbox failed to start${stderr.trim() !== '' ? `: ${HOST_PATHS.scrub(lastLine(stderr))}` : ''}` }
  // 0: no differences, 1: differences found; anything else is diffoscope failing (a signal n shows as 128+n).
  if (code === 0 || code === 1) return { ok: true, text, truncated: false, exitCode: code }
  return { ok: false, reason: `diffoscope failed (exit ${String(code)})${stderr.trim() !== '' ? `: ${lastLine(stderr)}` : ''}` }
}

function ended (stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) resolve()
    stream.once('end', resolve)
    stream.once('close', resolve)
    stream.once('error', () => { resolve() })
  })
}

function lastLine (text: string): string {
  const lines = text.trim().split('\n')
  return lines[lines.length - 1]!.slice(0, 300)
}
