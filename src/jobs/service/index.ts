export { JobService, JobNotFoundError, NotSubmitterError, SourceNotFoundError, type JobServiceOptions, type JobServiceStats, type JobServiceEvents } from './service.js'
export type { JobLedger, JobBlobs, BlobFetcher, Membership, JobEnvironments } from './ports.js'
export { runSlot, requestedLimits, resultEnvironment, MAX_SOURCE_BYTES } from './runner.js'
export { planDiagnosis, planCrossDiagnosis, diagnose } from './diagnoser.js'
