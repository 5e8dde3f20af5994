import { createHash } from 'node:crypto'
import { z } from 'zod'
import { canonicalJson } from '../util/canonical-json.js'
import { describeError } from '../util/errors.js'
import {
  ENVIRONMENT_NAME_PATTERN, MANIFEST_VERSION, MAX_ENVIRONMENT_NAME_LENGTH, MAX_MANIFEST_BYTES, MAX_MANIFEST_FIELD_LENGTH,
  MAX_MANIFEST_PACKAGES, MAX_REQUESTED_PACKAGES, PACKAGE_NAME_PATTERN
} from './constants.js'
import { InvalidManifestError } from './errors.js'

/**
 * An environment's identity: what is installed in it and where its base came
 * from. Its canonical JSON (RFC 8785) is a blob anyone can fetch, and the
 * sha256 of those bytes is the environment's hash, recorded in every result
 * built in it.
 */
export interface EnvironmentManifest {
  v: typeof MANIFEST_VERSION
  /** The environment's name (`debian-12`), which is also its platform label. */
  name: string
  /** Where the base came from: the Debian archive's `Origin` (`Debian`), or `oci` for an imported image. */
  origin: string
  /** A Debian base's suite (codename), e.g. `bookworm`. */
  suite?: string
  /** The base's date: the archive's `Date` (its Release file, as Debian writes it) or the image's `created`. */
  date: string
  /** dpkg's architecture name (`amd64`), or the image's. */
  architecture: string
  /** An imported image: the digest of its image manifest (`sha256:…`). */
  image?: string
  /** A derived environment: the hash of the environment its packages were installed into. */
  base?: string
  /** A derived environment: the packages a job asked for, sorted. */
  requested?: string[]
  /**
   * Every installed package as `name (= version)`, sorted by name: the form
   * of Debian's .buildinfo `Installed-Build-Depends` (a package of another
   * architecture is `name:arch`).
   */
  packages: string[]
}

/** `name (= version)`, optionally `name:arch (= version)`. */
const PACKAGE_ENTRY = /^([A-Za-z0-9][A-Za-z0-9+._-]*(?::[a-z0-9-]+)?) \(= ([A-Za-z0-9.+~:_-]+)\)$/
const HEX64 = /^[0-9a-f]{64}$/

// Control characters in a manifest's names and versions would forge lines in the reports that quote them.
// eslint-disable-next-line no-control-regex -- refusing them is the point
const field = z.string().min(1).max(MAX_MANIFEST_FIELD_LENGTH).regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')

const manifestSchema = z.strictObject({
  v: z.literal(MANIFEST_VERSION),
  name: z.string().max(MAX_ENVIRONMENT_NAME_LENGTH).regex(ENVIRONMENT_NAME_PATTERN, 'must be an environment name such as debian-12'),
  origin: field,
  suite: field.optional(),
  date: field,
  architecture: field,
  image: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be an image digest (sha256:…)').optional(),
  base: z.string().regex(HEX64, 'must be a manifest hash (64 lower-case hex digits)').optional(),
  requested: z.array(z.string().regex(PACKAGE_NAME_PATTERN, 'must be a Debian package name')).max(MAX_REQUESTED_PACKAGES).optional(),
  packages: z.array(z.string().max(2 * MAX_MANIFEST_FIELD_LENGTH).regex(PACKAGE_ENTRY, 'must be "name (= version)"')).max(MAX_MANIFEST_PACKAGES)
}).superRefine((manifest, ctx) => {
  for (let i = 1; i < manifest.packages.length; i++) {
    if (!(manifest.packages[i - 1]! < manifest.packages[i]!)) {
      ctx.addIssue({ code: 'custom', path: ['packages', i], message: 'must be sorted, each package once' })
      return
    }
  }
})

/** The manifest's bytes: its canonical JSON. */
export function manifestBytes (manifest: EnvironmentManifest): Buffer {
  return Buffer.from(canonicalJson(manifest), 'utf8')
}

/** The environment's hash: sha256 (hex) of the manifest's canonical JSON. */
export function manifestHash (manifest: EnvironmentManifest): string {
  return createHash('sha256').update(manifestBytes(manifest)).digest('hex')
}

/** Check a manifest (from a file or a peer); throws InvalidManifestError naming the problem. */
export function validateManifest (value: unknown): EnvironmentManifest {
  const parsed = manifestSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue !== undefined && issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''
    throw new InvalidManifestError(`not an environment manifest: ${where}${issue?.message ?? 'invalid'}`)
  }
  return parsed.data as EnvironmentManifest
}

/** Parse manifest bytes (bounded); the bytes must be the canonical form, so that their hash is the environment's. */
export function parseManifest (bytes: Uint8Array): EnvironmentManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new InvalidManifestError(`a manifest of ${bytes.byteLength} bytes is larger than the ${MAX_MANIFEST_BYTES} allowed`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidManifestError(`a manifest must be UTF-8 JSON: ${describeError(err)}`)
  }
  const manifest = validateManifest(value)
  if (!manifestBytes(manifest).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) {
    throw new InvalidManifestError('the manifest is not in canonical JSON form (RFC 8785), so its bytes do not name it')
  }
  return manifest
}

/** `name (= version)` entries, sorted and unique by name, from a package → version map. */
export function packageEntries (versions: ReadonlyMap<string, string>): string[] {
  return [...versions.entries()].map(([name, version]) => `${name} (= ${version})`).sort()
}

/** The manifest's packages as name → version. */
export function packageVersions (manifest: Pick<EnvironmentManifest, 'packages'>): Map<string, string> {
  const versions = new Map<string, string>()
  for (const entry of manifest.packages) {
    const match = PACKAGE_ENTRY.exec(entry)
    if (match !== null) versions.set(match[1]!, match[2]!)
  }
  return versions
}

/** One package whose version is not the same on every side (undefined: not installed there). */
export interface PackageDifference {
  name: string
  versions: Array<string | undefined>
}

/** Packages whose versions differ between the sides, sorted by name (names in `first` lead). */
export function differingPackages (sides: ReadonlyArray<ReadonlyMap<string, string>>, first: readonly string[] = []): PackageDifference[] {
  const names = new Set<string>()
  for (const side of sides) for (const name of side.keys()) names.add(name)
  const differences: PackageDifference[] = []
  for (const name of names) {
    const versions = sides.map((side) => side.get(name))
    if (versions.some((version) => version !== versions[0])) differences.push({ name, versions })
  }
  const rank = (name: string): number => {
    const i = first.indexOf(name)
    return i < 0 ? first.length : i
  }
  return differences.sort((a, b) => rank(a.name) - rank(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** `debhelper 13.11.4 vs 13.11.6, libfoo (none) vs 1.2 and 40 more`: at most `max` named. */
export function describeDifferences (differences: readonly PackageDifference[], max = 6): string {
  const shown = differences.slice(0, max).map((d) => `${d.name} ${d.versions.map((v) => v ?? '(none)').join(' vs ')}`)
  const rest = differences.length - shown.length
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.join(', ')
}

/** How a manifest reads in a sentence: `debian-12 + debhelper, help2man`. */
export function describeManifest (manifest: Pick<EnvironmentManifest, 'name' | 'requested'>): string {
  return manifest.requested !== undefined && manifest.requested.length > 0 ? `${manifest.name} + ${manifest.requested.join(', ')}` : manifest.name
}
