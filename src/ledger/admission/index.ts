// Quotas at the ledger's door: who may add how much to the log, per unit of time.
export { Admission, EVERYONE_A_STRANGER, type AdmissionInit, type AdmissionQuotas, type AdmissionStats, type QuotaRefusal, type Standing, type StandingFn } from './admission.js'
export { QuotaBucket } from './bucket.js'
export * from './constants.js'
