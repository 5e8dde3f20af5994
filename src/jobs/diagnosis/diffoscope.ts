import { spawn } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { MAX_TOOL_STDERR_BYTES } from './constants.js'

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

/**
 * Run diffoscope on two files for a text report. No shell is involved (the
 * paths are plain arguments), the whole process group is killed at the time
 * limit, and output past `maxBytes` is not kept: the tool is stopped there
 * and the report marked truncated.
 */
export async function runDiffoscope (executable: string, pathA: string, pathB: string, options: { timeoutMs: number, maxBytes: number }): Promise<ToolOutcome> {
  const args = ['--text', '-', '--max-text-report-size', String(options.maxBytes), '--', pathA, pathB]
  return await new Promise((resolve) => {
    let child
    try {
      // Its own process group, so the helpers diffoscope starts die with it.
      child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false })
    } catch (err) {
      resolve({ ok: false, reason: `could not start ${executable}: ${(err as Error).message}` })
      return
    }
    const stdout: Buffer[] = []
    let stdoutBytes = 0
    let stderr = ''
    let truncated = false
    let timedOut = false
    let settled = false
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }
    const timer = setTimeout(() => {
      timedOut = true
      killGroup()
    }, options.timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => {
      if (truncated) return
      const room = options.maxBytes - stdoutBytes
      if (chunk.byteLength > room) {
        stdout.push(chunk.subarray(0, room))
        stdoutBytes += room
        truncated = true
        killGroup()
        return
      }
      stdout.push(chunk)
      stdoutBytes += chunk.byteLength
    })
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_TOOL_STDERR_BYTES) stderr += chunk.toString('utf8').slice(0, MAX_TOOL_STDERR_BYTES - stderr.length)
    })
    const finish = (outcome: ToolOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(outcome)
    }
    child.once('error', (err) => { finish({ ok: false, reason: `could not run ${executable}: ${err.message}` }) })
    child.once('close', (code, signal) => {
      const text = Buffer.concat(stdout).toString('utf8')
      if (timedOut) finish({ ok: false, reason: `diffoscope was stopped after ${options.timeoutMs} ms` })
      else if (truncated) finish({ ok: true, text, truncated: true, exitCode: code })
      // 0: no differences, 1: differences found; anything else is diffoscope failing.
      else if (code === 0 || code === 1) finish({ ok: true, text, truncated: false, exitCode: code })
      else finish({ ok: false, reason: `diffoscope failed (${signal !== null ? `signal ${signal}` : `exit ${String(code)}`})${stderr.trim() !== '' ? `: ${lastLine(stderr)}` : ''}` })
    })
  })
}

function lastLine (text: string): string {
  const lines = text.trim().split('\n')
  return lines[lines.length - 1]!.slice(0, 300)
}
