export { packDirectory, DEFAULT_PACK_LIMITS, ALWAYS_SKIPPED, type PackOptions, type PackedSource } from './pack.js'
export { unpackTarball, type UnpackLimits, type UnpackResult } from './unpack.js'
export { UnsafeArchiveError, SourceTooLargeError, UnsafeSourceError, type UnsafeArchiveReason } from './errors.js'
export { compareBytes } from './paths.js'
