import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { MAX_RELEASE_BYTES, MAX_SMALL_FILE_BYTES, MAX_SOURCES_INDEX_BYTES } from '../constants.js'
import { DigestMismatchError, UpstreamError } from '../errors.js'
import type { AddressPolicy } from '../guard.js'
import { boundedGet } from '../http.js'
import type { FetchedRelease, Upstream } from '../types.js'
import { checkInRelease, DEBIAN_KEYRING } from './gpgv.js'

const COMPONENTS = ['main', 'contrib', 'non-free', 'non-free-firmware']

interface Stanza { version: string, directory: string, files: Array<{ sha256: string, size: number, name: string }> }

/** The `Key: value` fields of a deb822 paragraph, continuation lines kept with their field. */
function fields (paragraph: string): Map<string, string> {
  const found = new Map<string, string>()
  let key = ''
  for (const line of paragraph.split('\n')) {
    if (/^\s/.test(line) && key !== '') found.set(key, `${found.get(key)!}\n${line.trim()}`)
    else {
      const colon = line.indexOf(':')
      if (colon <= 0) continue
      key = line.slice(0, colon)
      found.set(key, line.slice(colon + 1).trim())
    }
  }
  return found
}

function sha256Lines (text: string | undefined): Array<{ sha256: string, size: number, name: string }> {
  return (text ?? '').split('\n').map((l) => l.trim().split(/\s+/)).filter((p) => p.length === 3 && /^[0-9a-f]{64}$/.test(p[0]!)).map(([sha256, size, name]) => ({ sha256: sha256!, size: Number(size), name: name! }))
}

/**
 * A Debian source package in a suite of a Debian archive. The chain of
 * checksums is followed from the suite's InRelease (whose OpenPGP signature
 * is checked with gpgv and the Debian archive keyring when both are
 * installed) to Sources.gz, to the package's .dsc, to every file the .dsc
 * names; each is refused unless its sha256 and size match.
 */
export function debianUpstream (archive: string, suite: string, source: string, policy: AddressPolicy): Upstream {
  const base = archive.replace(/\/+$/, '')
  /** Per Sources.gz hash: the package's stanzas, so an unchanged index is not read again. */
  let cached: { key: string, stanzas: Stanza[] } | undefined

  async function stanzas (signal: AbortSignal): Promise<Stanza[]> {
    const inRelease = await boundedGet(`${base}/dists/${suite}/InRelease`, { policy, maxBytes: MAX_SMALL_FILE_BYTES, signal })
    if (existsSync(DEBIAN_KEYRING)) await checkInRelease(inRelease, DEBIAN_KEYRING, signal)
    const text = inRelease.toString('utf8')
    const sha = fields(text.replace(/^-----BEGIN PGP SIGNED MESSAGE-----\n(Hash:.*\n)*\n/, '').split('\n-----BEGIN PGP SIGNATURE-----')[0]!).get('SHA256')
    const listed = sha256Lines(sha)
    const found: Stanza[] = []
    const keys: string[] = []
    for (const component of COMPONENTS) {
      const index = listed.find((f) => f.name === `${component}/source/Sources.gz`)
      if (index === undefined) continue
      keys.push(index.sha256)
    }
    const key = keys.join(',')
    if (cached?.key === key) return cached.stanzas
    for (const component of COMPONENTS) {
      const index = listed.find((f) => f.name === `${component}/source/Sources.gz`)
      if (index === undefined) continue
      if (index.size > MAX_SOURCES_INDEX_BYTES) throw new UpstreamError(`${suite}'s ${component} Sources.gz is ${index.size} bytes, more than the ${MAX_SOURCES_INDEX_BYTES} allowed`)
      const gz = await boundedGet(`${base}/dists/${suite}/${index.name}`, { policy, maxBytes: MAX_SOURCES_INDEX_BYTES, signal })
      const got = createHash('sha256').update(gz).digest('hex')
      if (got !== index.sha256 || gz.length !== index.size) throw new DigestMismatchError(`${suite}/${index.name} does not match the sha256 in InRelease`)
      const sources = gunzipSync(gz, { maxOutputLength: 16 * MAX_SOURCES_INDEX_BYTES }).toString('utf8')
      const marker = `Package: ${source}\n`
      for (let at = sources.indexOf(marker); at >= 0; at = sources.indexOf(marker, at + 1)) {
        if (at > 0 && sources[at - 1] !== '\n') continue
        const end = sources.indexOf('\n\n', at)
        const paragraph = fields(sources.slice(at, end < 0 ? undefined : end))
        const version = paragraph.get('Version')
        const directory = paragraph.get('Directory')
        if (version === undefined || directory === undefined || directory.includes('..')) continue
        found.push({ version, directory, files: sha256Lines(paragraph.get('Checksums-Sha256')) })
      }
      if (found.length > 0) break
    }
    cached = { key, stanzas: found }
    return found
  }

  return {
    async list (signal) {
      return (await stanzas(signal)).map((s) => ({ release: s.version }))
    },
    async fetch (release, workDir, signal): Promise<FetchedRelease> {
      const stanza = (await stanzas(signal)).find((s) => s.version === release)
      if (stanza === undefined) throw new UpstreamError(`${suite} no longer has ${source} ${release}`)
      const dsc = stanza.files.find((f) => f.name.endsWith('.dsc'))
      if (dsc === undefined) throw new UpstreamError(`${source} ${release} lists no .dsc in ${suite}'s Sources`)
      const dir = join(workDir, 'release')
      await mkdir(dir, { recursive: true })
      const get = async (file: { sha256: string, size: number, name: string }): Promise<Buffer> => {
        if (!/^[A-Za-z0-9][A-Za-z0-9.+~_-]*$/.test(file.name)) throw new UpstreamError(`the file name ${JSON.stringify(file.name.slice(0, 80))} is not a Debian source file name`)
        const bytes = await boundedGet(`${base}/${stanza.directory}/${file.name}`, { policy, maxBytes: Math.min(file.size, MAX_RELEASE_BYTES), signal })
        const got = createHash('sha256').update(bytes).digest('hex')
        if (got !== file.sha256 || bytes.length !== file.size) throw new DigestMismatchError(`${file.name} of ${source} ${release} hashes to ${got} (${bytes.length} bytes), not ${file.sha256} (${file.size} bytes)`)
        await writeFile(join(dir, file.name), bytes)
        return bytes
      }
      const dscBytes = await get(dsc)
      const named = sha256Lines(fields(dscBytes.toString('utf8').replace(/^-----BEGIN PGP SIGNED MESSAGE-----\n(Hash:.*\n)*\n/, '')).get('Checksums-Sha256'))
      if (named.length === 0) throw new UpstreamError(`${dsc.name} names no files with sha256 checksums`)
      if (named.reduce((n, f) => n + f.size, 0) > MAX_RELEASE_BYTES) throw new UpstreamError(`${source} ${release} is larger than ${MAX_RELEASE_BYTES} bytes`)
      for (const file of named) await get(file)
      return { release, dir, upstream: { url: `${base}/${stanza.directory}/${dsc.name}`, digest: { sha256: dsc.sha256 } } }
    }
  }
}

