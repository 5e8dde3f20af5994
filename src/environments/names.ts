import { InvalidInputError } from '../util/errors.js'
import { ENVIRONMENT_NAME_PATTERN, HOST_ENVIRONMENT, MAX_ENVIRONMENT_NAME_LENGTH, MAX_PACKAGE_NAME_LENGTH, MAX_REQUESTED_PACKAGES, PACKAGE_NAME_PATTERN } from './constants.js'

/** A Debian release a node can make itself with mmdebstrap. */
export interface DebianRelease {
  name: string
  /** The archive's codename for it. */
  suite: string
}

/**
 * The environments a node makes from Debian's archive without being told
 * how. Anything else comes from an image (`env import`).
 */
export const DEBIAN_RELEASES: readonly DebianRelease[] = [
  { name: 'debian-11', suite: 'bullseye' },
  { name: 'debian-12', suite: 'bookworm' },
  { name: 'debian-13', suite: 'trixie' },
  { name: 'debian-14', suite: 'forky' },
  { name: 'debian-unstable', suite: 'sid' }
]

export function debianRelease (name: string): DebianRelease | undefined {
  return DEBIAN_RELEASES.find((release) => release.name === name)
}

/** Why `name` cannot name an environment, or undefined. */
export function environmentNameProblem (name: string): string | undefined {
  if (name.length === 0) return 'an environment name must not be empty'
  if (name.length > MAX_ENVIRONMENT_NAME_LENGTH) return `the environment name "${name.slice(0, 40)}…" is longer than ${MAX_ENVIRONMENT_NAME_LENGTH} characters`
  if (!ENVIRONMENT_NAME_PATTERN.test(name)) return `the environment name ${JSON.stringify(name)} must be lower-case letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. debian-12)`
  return undefined
}

/** Throws InvalidInputError unless `name` can name an environment other than `host`. */
export function checkEnvironmentName (name: string): string {
  const problem = environmentNameProblem(name)
  if (problem !== undefined) throw new InvalidInputError(problem)
  if (name === HOST_ENVIRONMENT) throw new InvalidInputError(`"${HOST_ENVIRONMENT}" is the host itself, not an environment that can be made or removed`)
  return name
}

/** Why `name` is not a Debian package name a job may ask for, or undefined. */
export function packageNameProblem (name: string): string | undefined {
  if (name.length > MAX_PACKAGE_NAME_LENGTH) return `the package name "${name.slice(0, 40)}…" is longer than ${MAX_PACKAGE_NAME_LENGTH} characters`
  if (!PACKAGE_NAME_PATTERN.test(name)) return `${JSON.stringify(name)} is not a Debian package name (lower-case letters, digits, "+", "-" and ".", at least two characters)`
  return undefined
}

/** Sorted, de-duplicated package names; throws InvalidInputError naming the first bad one. */
export function normalisePackages (names: readonly string[]): string[] {
  for (const name of names) {
    const problem = packageNameProblem(name)
    if (problem !== undefined) throw new InvalidInputError(problem)
  }
  const unique = [...new Set(names)].sort()
  if (unique.length > MAX_REQUESTED_PACKAGES) throw new InvalidInputError(`at most ${MAX_REQUESTED_PACKAGES} packages may be asked for, got ${unique.length}`)
  return unique
}
