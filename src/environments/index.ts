export { EnvironmentStore, type EnvironmentStoreOptions, type EnvironmentInfo, type EnvironmentLease, type AcquireRequest, type MakeRequest, type EnvironmentStoreEvents } from './store.js'
export {
  manifestBytes, manifestHash, parseManifest, validateManifest, packageVersions, differingPackages, describeDifferences, describeManifest,
  type EnvironmentManifest, type PackageDifference
} from './manifest.js'
export { DEBIAN_RELEASES, debianRelease, environmentNameProblem, checkEnvironmentName, packageNameProblem, normalisePackages, type DebianRelease } from './names.js'
export {
  HOST_ENVIRONMENT, DEFAULT_ENVIRONMENT_CACHE_MB, MAX_REQUESTED_PACKAGES, MAX_PACKAGE_NAME_LENGTH, MAX_ENVIRONMENT_NAME_LENGTH, PACKAGE_NAME_PATTERN, ENVIRONMENT_NAME_PATTERN
} from './constants.js'
export {
  UnknownEnvironmentError, UnknownPackagesError, ArchiveUnreachableError, EnvironmentCreationError, EnvironmentInUseError, ImageArchiveError, InvalidManifestError
} from './errors.js'
export { findDebianArchive, MIRROR_VARIABLE } from './apt-sources.js'
export { importImageArchive } from './oci.js'
