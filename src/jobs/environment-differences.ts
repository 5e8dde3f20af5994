import { describeDifferences, differingPackages } from '../environments/manifest.js'
import type { ResultEnvironment } from './bodies.js'

/** One side of a disagreement: a platform or a builder, and the environment its result was built in (none: the host). */
export interface EnvironmentSide {
  label: string
  environment?: ResultEnvironment
}

/** The first 12 hex digits of a manifest hash. */
function short (hash: string): string {
  return hash.slice(0, 12)
}

/**
 * What the environments of disagreeing results say about the disagreement,
 * in a phrase for a verdict's reason: the packages whose versions differ
 * (those the job asked for first), or that every side had the very same
 * environment (so the build itself is not deterministic). Undefined when no
 * side was built in an environment. Only the versions the results record
 * are compared here; the full manifests are compared by the diagnosis.
 */
export function describeEnvironments (sides: readonly EnvironmentSide[], requested: readonly string[] = []): string | undefined {
  if (sides.length < 2 || sides.every((s) => s.environment === undefined)) return undefined
  const hashes = new Set(sides.map((s) => s.environment?.manifest ?? 'host'))
  if (hashes.size === 1) {
    const env = sides[0]!.environment!
    return `every side had the same environment (${env.name} ${short(env.manifest)}): the build is not deterministic`
  }
  const hosts = sides.filter((s) => s.environment === undefined)
  if (hosts.length > 0) {
    return `environments differ: ${sides.map((s) => s.environment === undefined ? `the host (${s.label})` : `${s.environment.name} ${short(s.environment.manifest)}`).join(' vs ')}`
  }
  const differences = differingPackages(sides.map((s) => new Map(Object.entries(s.environment!.packages))), requested)
  const which = sides.length > 2 ? ` (${sides.map((s) => s.label).join(' vs ')})` : ''
  if (differences.length === 0) {
    return `environments differ (${sides.map((s) => `${s.environment!.name} ${short(s.environment!.manifest)}`).join(' vs ')}) outside the packages the results name; the diagnosis compares their manifests`
  }
  return `environments differ: ${describeDifferences(differences, 6)}${which}`
}
