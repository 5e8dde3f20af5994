import type { JobView } from './view.js'

/** One place an artifact's hash appears: a job's platform, the path, and who built exactly those bytes. */
export interface ArtifactMatch {
  job: string
  name: string
  platform: string
  path: string
  size: number
  /** Builders whose latest result lists this hash at this path. */
  builders: string[]
  platformVerdict: JobView['platforms'][number]['verdict']
  /** Verified under the reader's policy: the platform is verified and its deciding group has exactly these bytes. */
  verified: boolean
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
      const byPath = new Map<string, { size: number, builders: string[] }>()
      for (const result of platform.results) {
        if (!result.latest) continue
        for (const artifact of result.artifacts) {
          if (artifact.sha256 !== sha256) continue
          const found = byPath.get(artifact.path) ?? { size: artifact.size, builders: [] }
          if (!found.builders.includes(result.builder)) found.builders.push(result.builder)
          byPath.set(artifact.path, found)
        }
      }
      for (const [path, found] of byPath) {
        const agreed = platform.artifacts?.some((a) => a.path === path && a.sha256 === sha256) ?? false
        matches.push({
          job: view.id,
          name: view.name,
          platform: platform.selector,
          path,
          size: found.size,
          builders: found.builders.sort(),
          platformVerdict: platform.verdict,
          verified: platform.verdict === 'verified' && agreed
        })
      }
    }
  }
  return matches
}
