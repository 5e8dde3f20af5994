import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { describeError } from '../../util/errors.js'
import { MAX_METADATA_BYTES, MAX_RELEASE_BYTES, MAX_RELEASES_LISTED } from '../constants.js'
import { DigestMismatchError, UpstreamError } from '../errors.js'
import type { AddressPolicy } from '../guard.js'
import { boundedGet } from '../http.js'
import type { FetchedRelease, ListedRelease, Upstream } from '../types.js'
import { unpackRelease } from '../unpack-release.js'

interface Packument {
  versions?: Record<string, { dist?: { tarball?: string, integrity?: string } }>
  time?: Record<string, string>
}

/**
 * An npm package on a registry (the npm CLI's protocol): the package
 * document lists versions and, per version, the tarball's URL and its
 * `integrity` (SRI, sha512); the tarball is checked against it.
 */
export function npmUpstream (registry: string, name: string, policy: AddressPolicy): Upstream {
  const base = registry.replace(/\/+$/, '')
  const documentUrl = `${base}/${name.startsWith('@') ? `@${encodeURIComponent(name.slice(1))}` : encodeURIComponent(name)}`
  const packument = async (signal: AbortSignal): Promise<Packument> => {
    const bytes = await boundedGet(documentUrl, { policy, maxBytes: MAX_METADATA_BYTES, headers: { accept: 'application/json' }, signal })
    try {
      return JSON.parse(bytes.toString('utf8')) as Packument
    } catch (err) {
      throw new UpstreamError(`${documentUrl} is not JSON (${describeError(err)})`)
    }
  }
  return {
    async list (signal) {
      const doc = await packument(signal)
      const listed: ListedRelease[] = Object.keys(doc.versions ?? {}).map((release) => {
        const time = Date.parse(doc.time?.[release] ?? '')
        return Number.isFinite(time) ? { release, publishedAt: time } : { release }
      })
      return listed.slice(-MAX_RELEASES_LISTED)
    },
    async fetch (release, workDir, signal): Promise<FetchedRelease> {
      const dist = (await packument(signal)).versions?.[release]?.dist
      if (dist?.tarball === undefined || dist.integrity === undefined) throw new UpstreamError(`${name}@${release} has no tarball with an integrity on ${base}`)
      const sri = /^sha512-([A-Za-z0-9+/]+={0,2})$/.exec(dist.integrity.split(/\s+/).find((s) => s.startsWith('sha512-')) ?? '')
      if (sri === null) throw new UpstreamError(`${name}@${release} publishes no sha512 integrity (${dist.integrity.slice(0, 80)}); only sha512 is accepted`)
      const expected = Buffer.from(sri[1]!, 'base64').toString('hex')
      const bytes = await boundedGet(dist.tarball, { policy, maxBytes: MAX_RELEASE_BYTES, signal })
      const got = createHash('sha512').update(bytes).digest('hex')
      if (got !== expected) throw new DigestMismatchError(`the tarball of ${name}@${release} (${dist.tarball}) does not match the registry's integrity: sha512 ${got.slice(0, 16)}… instead of ${expected.slice(0, 16)}…`)
      const dir = join(workDir, 'release')
      await unpackRelease(bytes, dir)
      return { release, dir, upstream: { url: dist.tarball, digest: { sha512: expected } } }
    }
  }
}
