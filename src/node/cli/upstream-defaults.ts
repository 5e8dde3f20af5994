import { readFile, readdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { runHostCommand } from '../../sandbox/host-process.js'
import { UsageError } from '../../util/errors.js'

/**
 * Where `watch add` finds a registry when none is given: the same place the
 * ecosystem's own tools look on this machine (so buildhaus names no
 * registry itself). The watch records the URL it used: every poller then
 * watches the same upstream.
 */

/** npm: $npm_config_registry, ~/.npmrc's `registry=`, then `npm config get registry`. */
export async function defaultNpmRegistry (env: NodeJS.ProcessEnv): Promise<string> {
  const fromEnv = env.npm_config_registry ?? env.NPM_CONFIG_REGISTRY
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const npmrc = await readFile(join(env.HOME ?? homedir(), '.npmrc'), 'utf8').catch(() => '')
  const line = /^\s*registry\s*=\s*(\S+)\s*$/m.exec(npmrc)
  if (line !== null) return line[1]!
  try {
    const environment = Object.fromEntries(Object.entries(env).filter((pair): pair is [string, string] => pair[1] !== undefined))
    const { stdout } = await runHostCommand('npm', ['config', 'get', 'registry'], { timeoutMs: 10_000, env: environment, cwd: process.cwd(), maxOutputBytes: 4096 })
    const url = stdout.trim()
    if (/^https?:\/\//.test(url)) return url
  } catch {}
  throw new UsageError('no npm registry is configured on this machine; pass --registry URL')
}

/** PyPI: $PIP_INDEX_URL or pip.conf's index-url, without its `/simple` (the JSON API lives beside it). */
export async function defaultPypiIndex (env: NodeJS.ProcessEnv): Promise<string> {
  let url = env.PIP_INDEX_URL
  if (url === undefined || url === '') {
    for (const file of [join(env.HOME ?? homedir(), '.config', 'pip', 'pip.conf'), join(env.HOME ?? homedir(), '.pip', 'pip.conf'), '/etc/pip.conf']) {
      const match = /^\s*index-url\s*=\s*(\S+)\s*$/m.exec(await readFile(file, 'utf8').catch(() => ''))
      if (match !== null) { url = match[1]!; break }
    }
  }
  if (url === undefined || url === '') throw new UsageError('no Python package index is configured on this machine (PIP_INDEX_URL or pip.conf); pass --index URL, the index\'s root whose /pypi/PROJECT/json answers')
  return url.replace(/\/simple\/?$/, '')
}

/** Debian: the first archive URL in this machine's apt sources that serves `suite`. */
export async function defaultDebianArchive (suite: string): Promise<string> {
  const found: string[] = []
  const files = ['/etc/apt/sources.list', ...(await readdir('/etc/apt/sources.list.d').catch(() => [])).filter((f) => f.endsWith('.list') || f.endsWith('.sources')).map((f) => join('/etc/apt/sources.list.d', f))]
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '')
    if (file.endsWith('.sources')) {
      for (const paragraph of text.split(/\n\s*\n/)) {
        const uris = /^URIs:\s*(.+)$/m.exec(paragraph)?.[1]?.trim().split(/\s+/) ?? []
        const suites = /^Suites:\s*(.+)$/m.exec(paragraph)?.[1]?.trim().split(/\s+/) ?? []
        if (suites.includes(suite)) found.push(...uris)
      }
    } else {
      for (const line of text.split('\n')) {
        const parts = line.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim().split(/\s+/)
        if ((parts[0] === 'deb' || parts[0] === 'deb-src') && parts[2] === suite && parts[1] !== undefined) found.push(parts[1])
      }
    }
  }
  const url = found.find((u) => /^https?:\/\//.test(u))
  if (url === undefined) throw new UsageError(`this machine's apt sources name no archive for ${suite}; pass --archive URL`)
  return url
}
