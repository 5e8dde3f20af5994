import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EnvironmentCreationError } from './errors.js'
import { parseDeb822 } from './deb822.js'
import { DEBIAN_RELEASES } from './names.js'

/** The environment variable that names the Debian archive to use instead of the one in the apt sources. */
export const MIRROR_VARIABLE = 'BUILDHAUS_DEBIAN_MIRROR'

/** One `deb` line or stanza of apt's sources. */
export interface AptSource {
  uri: string
  suites: string[]
}

/** Suites of Debian's main archive: every codename buildhaus knows, older ones, and the aliases. */
const DEBIAN_SUITES = new Set([
  ...DEBIAN_RELEASES.map((r) => r.suite), 'buster', 'stretch', 'stable', 'oldstable', 'oldoldstable', 'testing', 'unstable', 'experimental'
])

/** `deb` entries of a one-line-style sources.list text. */
export function parseSourcesList (text: string): AptSource[] {
  const sources: AptSource[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    // deb [option=value …] URI suite [component…]
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line)
    if (match !== null) sources.push({ uri: match[1]!, suites: [match[2]!] })
  }
  return sources
}

/** `deb` entries of a deb822-style .sources text (disabled stanzas skipped). */
export function parseSourcesFile (text: string): AptSource[] {
  return parseDeb822(text)
    .filter((p) => (p.get('types') ?? '').split(/\s+/).includes('deb') && (p.get('enabled') ?? 'yes').toLowerCase() !== 'no')
    .flatMap((p) => (p.get('uris') ?? '').split(/\s+/).filter((uri) => uri !== '').map((uri) => ({ uri, suites: (p.get('suites') ?? '').split(/\s+/).filter((s) => s !== '') })))
}

/** The first source that serves a Debian release suite (not -security, -updates or -backports). */
export function debianArchiveOf (sources: readonly AptSource[]): string | undefined {
  return sources.find((source) => /^(https?|file):/.test(source.uri) && source.suites.some((suite) => DEBIAN_SUITES.has(suite)))?.uri.replace(/\/+$/, '')
}

/** apt's sources on this machine, in apt's order: sources.list, then sources.list.d/ by name. */
export async function readAptSources (etcApt = '/etc/apt'): Promise<AptSource[]> {
  const sources: AptSource[] = []
  const read = async (path: string): Promise<string | undefined> => await readFile(path, 'utf8').catch(() => undefined)
  const list = await read(join(etcApt, 'sources.list'))
  if (list !== undefined) sources.push(...parseSourcesList(list))
  const dir = join(etcApt, 'sources.list.d')
  const names = (await readdir(dir).catch(() => [] as string[])).sort()
  for (const name of names) {
    const text = await read(join(dir, name))
    if (text === undefined) continue
    if (name.endsWith('.list')) sources.push(...parseSourcesList(text))
    else if (name.endsWith('.sources')) sources.push(...parseSourcesFile(text))
  }
  return sources
}

/**
 * The Debian archive to make environments from: the mirror given, else
 * $BUILDHAUS_DEBIAN_MIRROR, else the one this machine's own apt uses.
 * buildhaus names no archive host itself.
 */
export async function findDebianArchive (options: { mirror?: string, env?: NodeJS.ProcessEnv, etcApt?: string } = {}): Promise<string> {
  const given = options.mirror ?? (options.env ?? process.env)[MIRROR_VARIABLE]
  if (given !== undefined && given !== '') {
    if (!/^(https?|file):\/\//.test(given)) throw new EnvironmentCreationError(`the Debian mirror ${JSON.stringify(given)} is not an http(s):// or file:// URL`)
    return given.replace(/\/+$/, '')
  }
  const found = debianArchiveOf(await readAptSources(options.etcApt))
  if (found === undefined) {
    throw new EnvironmentCreationError(`this machine's apt sources name no Debian archive to make environments from; set ${MIRROR_VARIABLE} to a Debian mirror's URL (or pass --mirror)`)
  }
  return found
}
