import { spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import picomatch from 'picomatch'
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
    const out = await git([...config, 'ls-remote', target, refPattern.includes('*') ? refPattern.slice(0, refPattern.indexOf('*')) + '*' : refPattern], { signal })
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
      await git([...config, 'clone', '--quiet', '--depth', '1', '--no-tags', '--single-branch', '--branch', release.startsWith('refs/') ? ref : ref.replace(/^refs\/(tags|heads)\//, ''), '--', target, dir], { signal })
      const head = (await git(['-C', dir, 'rev-parse', 'HEAD^{commit}'], { signal })).trim()
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

async function git (args: string[], options: { signal: AbortSignal }): Promise<string> {
  const child = spawn('git', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_ALLOW_PROTOCOL: 'http:https:git', LC_ALL: 'C' }
  })
  let out = ''
  let err = ''
  let size = 0
  const kill = (): void => { child.kill('SIGKILL') }
  const timer = setTimeout(kill, GIT_TIMEOUT_MS)
  options.signal.addEventListener('abort', kill, { once: true })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { size += chunk.length; if (size > MAX_GIT_OUTPUT_BYTES) kill(); else out += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { if (err.length < 4096) err += chunk })
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', resolve)
    })
    if (code !== 0) throw new UpstreamError(`git ${args.filter((a) => !a.startsWith('-c') && !a.includes('=')).slice(0, 2).join(' ')} failed${options.signal.aborted ? ' (stopped)' : size > MAX_GIT_OUTPUT_BYTES ? ' (too much output)' : ''}: ${err.trim().split('\n').slice(-2).join(' ') || `exit ${String(code)}`}`)
    return out
  } catch (e) {
    if (e instanceof UpstreamError) throw e
    throw new UpstreamError(`could not run git (${describeError(e)}); install git to poll git watches`)
  } finally {
    clearTimeout(timer)
    options.signal.removeEventListener('abort', kill)
  }
}
