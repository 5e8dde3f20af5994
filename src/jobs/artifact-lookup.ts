import type { JobView, PlatformView } from './view.js'

/** One place an artifact's hash appears: a job's platform, the path, and who built exactly those bytes. */
export interface ArtifactMatch {
  job: string
  name: string
  platform: string
  path: string
  size: number
  /** Builders whose latest result lists this hash at this path. */
  builders: string[]
  /** Those of `builders` the reader's policy does not believe (their word counts for nothing). */
  untrusted: string[]
  platformVerdict: JobView['platforms'][number]['verdict']
  /** Why the platform has its verdict (who agrees, who differs on which file). */
  platformReason?: string
  /** Agreeing distinct builders in the deciding (or largest) group, and how many the reader needs. */
  agreeing: number
  quorum: number
  /** The hash the deciding group agreed on at this path, when the platform is decided and has the path. */
  agreedSha256?: string
  /** When the platform's verdict was reached, by the builders' clocks (see platformDecidedAt). */
  since?: number
  /** Verified under the reader's policy: the platform is verified and its deciding group has exactly these bytes. */
  verified: boolean
}

/**
 * When a platform reached its verdict, by the builders' own clocks (the `time`
 * of their result entries, which the log does not check): for a verified or
 * failed platform, the result that completed the quorum; for a mismatch, the
 * latest counted result; undefined while pending.
 */
export function platformDecidedAt (platform: PlatformView): number | undefined {
  const counted = platform.results.filter((r) => r.counted)
  if (platform.verdict === 'verified' || platform.verdict === 'failed') {
    const times = counted.filter((r) => r.agrees === true).map((r) => r.time).sort((a, b) => a - b)
    if (times.length === 0) return undefined
    return times[Math.min(platform.quorum, times.length) - 1]
  }
  if (platform.verdict === 'mismatch' && counted.length > 0) return Math.max(...counted.map((r) => r.time))
  return undefined
}

/**
 * Answer "which builders built exactly this file, for which job and platform,
 * and is it verified under my policy?" from folded job views.
 */
export function findArtifact (views: Iterable<JobView>, sha256: string, jobId?: string): ArtifactMatch[] {
  const matches: ArtifactMatch[] = []
  for (const view of views) {
    if (jobId !== undefined && view.id !== jobId) continue
    for (const platform of view.platforms) {
      const byPath = new Map<string, { size: number, builders: string[], untrusted: string[] }>()
      for (const result of platform.results) {
        if (!result.latest) continue
        for (const artifact of result.artifacts) {
          if (artifact.sha256 !== sha256) continue
          const found = byPath.get(artifact.path) ?? { size: artifact.size, builders: [], untrusted: [] }
          if (!found.builders.includes(result.builder)) found.builders.push(result.builder)
          if (!result.trusted && !found.untrusted.includes(result.builder)) found.untrusted.push(result.builder)
          byPath.set(artifact.path, found)
        }
      }
      const since = platformDecidedAt(platform)
      for (const [path, found] of byPath) {
        const agreed = platform.artifacts?.find((a) => a.path === path)?.sha256
        matches.push({
          job: view.id,
          name: view.name,
          platform: platform.selector,
          path,
          size: found.size,
          builders: found.builders.sort(),
          untrusted: found.untrusted.sort(),
          platformVerdict: platform.verdict,
          ...(platform.reason !== undefined ? { platformReason: platform.reason } : {}),
          agreeing: platform.agreeing,
          quorum: platform.quorum,
          ...(agreed !== undefined ? { agreedSha256: agreed } : {}),
          ...(since !== undefined ? { since } : {}),
          verified: platform.verdict === 'verified' && agreed === sha256
        })
      }
    }
  }
  return matches
}
