import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { describeError } from '../../util/errors.js'
import { MAX_METADATA_BYTES, MAX_RELEASE_BYTES, MAX_RELEASES_LISTED } from '../constants.js'
import { DigestMismatchError, UpstreamError } from '../errors.js'
import type { AddressPolicy } from '../guard.js'
import { boundedGet } from '../http.js'
import type { FetchedRelease, ListedRelease, Upstream } from '../types.js'
import { unpackRelease } from '../unpack-release.js'

interface ProjectJson {
  releases?: Record<string, Array<{ packagetype?: string, url?: string, filename?: string, digests?: { sha256?: string }, upload_time_iso_8601?: string, yanked?: boolean }>>
}

/**
 * A PyPI project through PyPI's JSON API (`<index>/pypi/<project>/json`):
 * per release, its files with their sha256; the release's sdist (a
 * .tar.gz) is fetched and checked against it. Yanked files are skipped.
 */
export function pypiUpstream (index: string, project: string, policy: AddressPolicy): Upstream {
  const documentUrl = `${index.replace(/\/+$/, '')}/pypi/${encodeURIComponent(project)}/json`
  const document = async (signal: AbortSignal): Promise<ProjectJson> => {
    const bytes = await boundedGet(documentUrl, { policy, maxBytes: MAX_METADATA_BYTES, headers: { accept: 'application/json' }, signal })
    try {
      return JSON.parse(bytes.toString('utf8')) as ProjectJson
    } catch (err) {
      throw new UpstreamError(`${documentUrl} is not JSON (${describeError(err)})`)
    }
  }
  const sdistOf = (files: NonNullable<ProjectJson['releases']>[string] | undefined) =>
    files?.find((f) => f.packagetype === 'sdist' && f.yanked !== true && (f.filename ?? f.url ?? '').endsWith('.tar.gz') && typeof f.url === 'string' && typeof f.digests?.sha256 === 'string')
  return {
    async list (signal) {
      const doc = await document(signal)
      const listed: ListedRelease[] = []
      for (const [release, files] of Object.entries(doc.releases ?? {})) {
        const sdist = sdistOf(files)
        if (sdist === undefined) continue
        const time = Date.parse(sdist.upload_time_iso_8601 ?? '')
        listed.push(Number.isFinite(time) ? { release, publishedAt: time } : { release })
      }
      return listed.slice(-MAX_RELEASES_LISTED)
    },
    async fetch (release, workDir, signal): Promise<FetchedRelease> {
      const sdist = sdistOf((await document(signal)).releases?.[release])
      if (sdist === undefined) throw new UpstreamError(`${project} ${release} has no .tar.gz sdist with a sha256 on ${index}`)
      const expected = sdist.digests!.sha256!.toLowerCase()
      const bytes = await boundedGet(sdist.url!, { policy, maxBytes: MAX_RELEASE_BYTES, signal })
      const got = createHash('sha256').update(bytes).digest('hex')
      if (got !== expected) throw new DigestMismatchError(`the sdist of ${project} ${release} (${sdist.url!}) hashes to sha256 ${got}, not the published ${expected}`)
      const dir = join(workDir, 'release')
      await unpackRelease(bytes, dir)
      return { release, dir, upstream: { url: sdist.url!, digest: { sha256: expected } } }
    }
  }
}
