import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import picomatch from 'picomatch'
import type { Readable } from 'node:stream'
import { startHostProcess } from '../../sandbox/host-process.js'
import { toolSandbox, ToolSandbox } from '../../sandbox/tool-sandbox.js'
import { componentLogger } from '../../util/logger.js'
import { describeError } from '../../util/errors.js'
import { GIT_TIMEOUT_MS, MAX_GIT_OUTPUT_BYTES, MAX_RELEASES_LISTED } from '../constants.js'
import { DigestMismatchError, UpstreamError } from '../errors.js'
import type { AddressPolicy } from '../guard.js'
import type { FetchedRelease, Upstream } from '../types.js'

/**
 * Tags of a git repository, through the system's git: `ls-remote` lists
 * the refs matching the watch's pattern (with the commit each annotated tag
 * points to), a shallow clone of one tag fetches its tree, and the clone's
 * commit must be the one listed (git checks every object's hash itself).
 * Only http(s) and git:// URLs; the host is resolved and checked here and
 * git is pinned to that address (curl's resolve option for http(s), the
 * address itself for git://), with no redirects, credentials, hooks or
 * system configuration.
 */
export function gitUpstream (url: string, refPattern: string, policy: AddressPolicy): Upstream {
  const matches = picomatch(refPattern)
  const releaseOf = (ref: string): string => (refPattern.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : ref.slice('refs/'.length))
  const refOf = (release: string): string => (refPattern.startsWith('refs/tags/') ? `refs/tags/${release}` : `refs/${release}`)

  async function listRefs (signal: AbortSignal): Promise<Map<string, string>> {
    const { target, config } = await pinned(url, policy)
    const out = await runGit(() => [...config, 'ls-remote', target, refPattern.includes('*') ? refPattern.slice(0, refPattern.indexOf('*')) + '*' : refPattern], { signal })
    const commits = new Map<string, string>()
    for (const line of out.split('\n')) {
      const [commit, ref] = line.split('\t')
      if (commit === undefined || ref === undefined || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) continue
      const peeled = ref.endsWith('^{}')
      const name = peeled ? ref.slice(0, -3) : ref
      if (!matches(name)) continue
      // An annotated tag's own id first, then the commit it points to (^{}): keep the commit.
      if (peeled || !commits.has(name)) commits.set(name, commit)
    }
    return commits
  }

  return {
    async list (signal) {
      return [...(await listRefs(signal)).keys()].slice(-MAX_RELEASES_LISTED).map((ref) => ({ release: releaseOf(ref) }))
    },
    async fetch (release, workDir, signal): Promise<FetchedRelease> {
      const ref = refOf(release)
      const commit = (await listRefs(signal)).get(ref)
      if (commit === undefined) throw new UpstreamError(`${url} has no ${ref} (any more)`)
      const dir = join(workDir, 'release')
      await mkdir(workDir, { recursive: true })
      const { target, config } = await pinned(url, policy)
      await runGit((work) => [...config, 'clone', '--quiet', '--depth', '1', '--no-tags', '--single-branch', '--branch', release.startsWith('refs/') ? ref : ref.replace(/^refs\/(tags|heads)\//, ''), '--', target, join(work, 'release')], { signal, workDir })
      const head = (await runGit((work) => ['-C', join(work, 'release'), 'rev-parse', 'HEAD^{commit}'], { signal, workDir })).trim()
      if (head !== commit) throw new DigestMismatchError(`the clone of ${ref} from ${url} is at commit ${head}, not the ${commit} the repository listed`)
      return { release, dir, upstream: { url, digest: { gitCommit: commit } } }
    }
  }
}

/** The URL git is given and the options that keep it on the checked address. */
async function pinned (url: string, policy: AddressPolicy): Promise<{ target: string, config: string[] }> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UpstreamError(`${url} is not a URL`)
  }
  const { address, family } = await policy.resolve(parsed.hostname)
  const config = ['-c', 'http.followRedirects=false', '-c', 'credential.helper=', '-c', 'core.hooksPath=/dev/null', '-c', 'protocol.allow=never', '-c', `protocol.${parsed.protocol.slice(0, -1)}.allow=always`]
  if (parsed.protocol === 'git:') {
    const copy = new URL(url)
    copy.hostname = family === 6 ? `[${address}]` : address
    return { target: copy.toString(), config }
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UpstreamError(`${url}: only http(s) and git:// repositories can be watched`)
  const port = parsed.port !== '' ? parsed.port : parsed.protocol === 'https:' ? '443' : '80'
  return { target: url, config: [...config, '-c', `http.curloptResolve=${parsed.hostname}:${port}:${family === 6 ? `[${address}]` : address}`] }
}

/** The environment git runs with, in its sandbox or not: no prompts, no system or user configuration. */
const GIT_ENV = { GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_ALLOW_PROTOCOL: 'http:https:git', LC_ALL: 'C' }
/** Where the poll's work directory appears inside git's sandbox. */
const SANDBOX_WORK = '/work'
/** git's private /tmp in its sandbox (a tmpfs: memory); a clone is written to the work directory, not here. */
const GIT_TMP_BYTES = 64 * 1024 * 1024
/** Data (RLIMIT_DATA) each process in git's sandbox may take: a shallow clone's pack is indexed in memory. */
const GIT_DATA_BYTES = 2 * 1024 * 1024 * 1024

const log = componentLogger('upstream:git')
let warnedUnsandboxed = false

export interface GitOptions {
  signal: AbortSignal
  /** The poll's work directory: the only host directory git may write (`args` gets the path it has there). */
  workDir?: string
  /** bubblewrap to use (default: found on the system PATH). */
  bwrapPath?: string
}

/**
 * Run git on a stranger's repository: in a bubblewrap sandbox of its own
 * (src/sandbox/tool-sandbox.ts) that shares the host's network (a fetch
 * needs it) and shows it the read-only system, a private /tmp and the poll's
 * work directory, nothing of the node's home, key, ledger or environment.
 * Without a usable bubblewrap it runs as the node's user, warned once (it
 * still inherits none of the node's descriptors: src/sandbox/host-process.ts).
 * `args` is given the work directory as git sees it. Resolves with stdout.
 */
export async function runGit (args: (work: string) => string[], options: GitOptions): Promise<string> {
  const sandbox = await toolSandbox(options.bwrapPath)
  if (!(sandbox instanceof ToolSandbox)) {
    if (!warnedUnsandboxed) log.error('git runs outside a sandbox, as this node\'s user, on repositories anyone can name: %s', sandbox.unavailable)
    warnedUnsandboxed = true
    return await gitOnHost(args(options.workDir ?? '/'), options.signal)
  }
  const argv = args(SANDBOX_WORK)
  const run = await sandbox.start({
    argv: ['git', ...argv],
    inputs: [],
    tmpBytes: GIT_TMP_BYTES,
    dataBytes: GIT_DATA_BYTES,
    network: true,
    env: GIT_ENV,
    ...(options.workDir === undefined ? {} : { writable: { path: options.workDir, at: SANDBOX_WORK } })
  })
  const output = collect(run.stdout, run.stderr, () => { void run.kill() })
  const timer = setTimeout(output.kill, GIT_TIMEOUT_MS)
  options.signal.addEventListener('abort', output.kill, { once: true })
  try {
    const [started, exit] = await Promise.all([run.started, run.exited, output.ended])
    const spawnError = run.spawnError()
    if (spawnError !== undefined) throw new UpstreamError(`could not start git's sandbox (${describeError(spawnError)})`)
    if (!started) throw new UpstreamError(`git's sandbox did not start: ${output.err().trim().split('\n').slice(-1)[0] ?? `exit ${String(exit.code)}`}`)
    return output.result(argv, exit.code, options.signal)
  } finally {
    clearTimeout(timer)
    options.signal.removeEventListener('abort', output.kill)
    await run.dispose()
  }
}

/** git as a process of the node's (no sandbox). */
async function gitOnHost (args: string[], signal: AbortSignal): Promise<string> {
  const child = startHostProcess('git', args, {
    stdout: 'pipe',
    stderr: 'pipe',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', ...GIT_ENV }
  })
  // Its whole group: git runs its remote helpers (git-remote-https) as processes of its own.
  const output = collect(child.stdout!, child.stderr!, () => { child.kill('SIGKILL', { group: true }) })
  const timer = setTimeout(output.kill, GIT_TIMEOUT_MS)
  signal.addEventListener('abort', output.kill, { once: true })
  try {
    const [{ code }] = await Promise.all([child.closed, output.ended])
    return output.result(args, code, signal)
  } catch (e) {
    if (e instanceof UpstreamError) throw e
    throw new UpstreamError(`could not run git (${describeError(e)}); install git to poll git watches`)
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', output.kill)
  }
}

/** git's output, bounded: stdout up to MAX_GIT_OUTPUT_BYTES (past it, `kill`), the start of stderr. */
function collect (stdout: Readable, stderr: Readable, killOnce: () => void): { kill: () => void, ended: Promise<unknown>, err: () => string, result: (args: string[], code: number | null, signal: AbortSignal) => string } {
  let killed = false
  const kill = (): void => {
    if (!killed) killOnce()
    killed = true
  }
  let out = ''
  let err = ''
  let size = 0
  stdout.setEncoding('utf8').on('data', (chunk: string) => { size += chunk.length; if (size > MAX_GIT_OUTPUT_BYTES) kill(); else out += chunk })
  stderr.setEncoding('utf8').on('data', (chunk: string) => { if (err.length < 4096) err += chunk })
  const ended = Promise.all([stdout, stderr].map(async (stream) => { await new Promise((resolve) => { stream.once('end', resolve); stream.once('close', resolve) }) }))
  return {
    kill,
    ended,
    err: () => err,
    result: (args, code, signal) => {
      if (code !== 0) throw new UpstreamError(`git ${args.filter((a) => !a.startsWith('-c') && !a.includes('=')).slice(0, 2).join(' ')} failed${signal.aborted ? ' (stopped)' : size > MAX_GIT_OUTPUT_BYTES ? ' (too much output)' : ''}: ${err.trim().split('\n').slice(-2).join(' ') || `exit ${String(code)}`}`)
      return out
    }
  }
}
