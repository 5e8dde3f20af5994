import { constants, statSync } from 'node:fs'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import type { Readable } from 'node:stream'
import { SYSTEM_PATH } from '../../sandbox/host.js'
import { runHostCommand } from '../../sandbox/host-process.js'
import { toolSandbox, ToolSandbox } from '../../sandbox/tool-sandbox.js'
import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'
import { UpstreamError } from '../errors.js'

/** The keyring Debian's InRelease files are signed for (package debian-archive-keyring). */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'

/** A signature check of a few hundred kB takes milliseconds; past this gpgv is stuck. */
const GPGV_TIMEOUT_MS = 60_000
/** gpgv's private /tmp in its sandbox: it writes nothing there that matters. */
const GPGV_TMP_BYTES = 16 * 1024 * 1024
/** Data per process in the sandbox: a check of an InRelease needs a few MiB. */
const GPGV_DATA_BYTES = 512 * 1024 * 1024
/** What gpgv says is kept up to here: its last line goes into the error. */
const MAX_GPGV_OUTPUT_BYTES = 4096
/** Where gpgv and the signed file appear inside its sandbox. */
const INSIDE = { gpgv: '/tool/gpgv', signed: '/in/InRelease' } as const

const log = componentLogger('buildhaus:upstream:gpgv')
let warnedUnsandboxed = false

/**
 * Check a Debian archive's InRelease against `keyring` with gpgv. The file
 * comes from whatever archive a watch names, so gpgv parses a stranger's
 * OpenPGP packets: it runs in the tool sandbox (src/sandbox/tool-sandbox.ts)
 * without network, seeing the read-only system and the one file, nothing of
 * the node's home, key or ledger. Without a usable bubblewrap it runs as the
 * node's user, warned once (it still inherits none of the node's
 * descriptors).
 *
 * gpgv missing from PATH skips the check (the checksum chain from InRelease
 * down still holds, and WATCHES.md says so); a gpgv that is there but does
 * not start, or does not verify, refuses the release.
 */
export async function checkInRelease (signed: Buffer, keyring: string, signal?: AbortSignal): Promise<void> {
  const found = onPath('gpgv')
  if (found === undefined) return
  try {
    await access(found, constants.X_OK)
  } catch (err) {
    throw new UpstreamError(`cannot check the archive's InRelease signature: gpgv did not start (${describeError(err)})`)
  }
  const sandbox = await toolSandbox()
  const result = sandbox instanceof ToolSandbox
    ? await inSandbox(sandbox, found, signed, keyring, signal)
    : await onHost(found, signed, keyring, sandbox.unavailable, signal)
  if (result.code !== 0) {
    const said = result.timedOut ? `no answer within ${GPGV_TIMEOUT_MS / 1000} s` : result.stderr.trim().split('\n').slice(-1)[0] ?? ''
    throw new UpstreamError(`the archive's InRelease signature does not verify with ${keyring}: ${said}`)
  }
}

interface GpgvResult {
  code: number | null
  stderr: string
  timedOut: boolean
}

async function inSandbox (sandbox: ToolSandbox, gpgv: string, signed: Buffer, keyring: string, signal: AbortSignal | undefined): Promise<GpgvResult> {
  let dir: string
  try {
    dir = await mkdtemp(join(tmpdir(), 'buildhaus-gpgv-'))
  } catch (err) {
    throw new UpstreamError(`cannot check the archive's InRelease signature: no room for it in ${tmpdir()} (${describeError(err)})`)
  }
  try {
    const file = join(dir, 'InRelease')
    await writeFile(file, signed, { mode: 0o644 }).catch((err: unknown) => {
      throw new UpstreamError(`cannot check the archive's InRelease signature: it could not be written to ${tmpdir()} (${describeError(err)})`)
    })
    let run
    try {
      run = await sandbox.start({
        argv: [INSIDE.gpgv, '--keyring', keyring, INSIDE.signed],
        inputs: [{ path: gpgv, at: INSIDE.gpgv }, { path: file, at: INSIDE.signed }],
        tmpBytes: GPGV_TMP_BYTES,
        dataBytes: GPGV_DATA_BYTES
      })
    } catch (err) {
      // Staging the files for a root node's sandbox user can fail (a full disk): a refusal that says so, not a stack.
      throw new UpstreamError(`cannot check the archive's InRelease signature: gpgv's sandbox could not be set up (${describeError(err)})`)
    }
    let timedOut = false
    const kill = (): void => { void run.kill() }
    const timer = setTimeout(() => { timedOut = true; kill() }, GPGV_TIMEOUT_MS)
    signal?.addEventListener('abort', kill, { once: true })
    try {
      const [stderr, , started, exit] = await Promise.all([bounded(run.stderr), bounded(run.stdout), run.started, run.exited])
      const spawnError = run.spawnError()
      if (spawnError !== undefined) throw new UpstreamError(`cannot check the archive's InRelease signature: gpgv's sandbox did not start (${describeError(spawnError)})`)
      if (!started) throw new UpstreamError(`cannot check the archive's InRelease signature: gpgv's sandbox did not start: ${stderr.trim().split('\n').slice(-1)[0] ?? `exit ${String(exit.code)}`}`)
      signal?.throwIfAborted()
      return { code: exit.code, stderr, timedOut }
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', kill)
      await run.dispose()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function onHost (gpgv: string, signed: Buffer, keyring: string, why: string, signal: AbortSignal | undefined): Promise<GpgvResult> {
  if (!warnedUnsandboxed) log.error('gpgv runs outside a sandbox, as this node\'s user, on InRelease files of archives watches name: %s', why)
  warnedUnsandboxed = true
  try {
    return await runHostCommand(gpgv, ['--keyring', keyring, '-'], { env: { PATH: SYSTEM_PATH, LANG: 'C' }, input: signed, timeoutMs: GPGV_TIMEOUT_MS, maxOutputBytes: MAX_GPGV_OUTPUT_BYTES, ...(signal !== undefined ? { signal } : {}) })
  } catch (err) {
    throw new UpstreamError(`cannot check the archive's InRelease signature: gpgv did not start (${describeError(err)})`)
  }
}

/** The first file called `name` in the directories of PATH, executable or not (as a shell would find it, then fail on it). */
function onPath (name: string): string | undefined {
  for (const dir of (process.env.PATH ?? SYSTEM_PATH).split(delimiter)) {
    if (!dir.startsWith('/')) continue
    const candidate = join(dir, name)
    try {
      if (statSync(candidate).isFile()) return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

/** The start of a stream's text, read to its end (so the process is never blocked on a full pipe). */
async function bounded (stream: Readable): Promise<string> {
  let text = ''
  for await (const chunk of stream) {
    if (text.length < MAX_GPGV_OUTPUT_BYTES) text += (chunk as Buffer).toString('utf8').slice(0, MAX_GPGV_OUTPUT_BYTES - text.length)
  }
  return text
}
