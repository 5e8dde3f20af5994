// The ledger layer's public surface: entries, the store, sync, gossip, export and audit.
export * from './constants.js'
export * from './errors.js'
export {
  EntryCodec, decodeTrusted, entryIdOf, signedMessage, unsignedOf, verifyEntrySignature,
  type CheckedEntry, type DecodedEntry, type Entry, type EntryBody, type EntryTypeRule, type EntryTypeRules, type UnsignedEntry
} from './entry.js'
export * from './admission/index.js'
export { checkForkPair, decodeForkProof, encodeForkProof, type ForkProof } from './forks.js'
export {
  LedgerStore, futureProblem, type ChainHead, type IngestOptions, type IngestRejectReason, type IngestRejection, type IngestReport, type LedgerStats,
  type LedgerStoreEvents, type LedgerStoreOptions
} from './store.js'
export { VerifyPool, sharedVerifyPool, verifyEntries, type BatchVerifier, type SignatureCheck, type VerifyPoolOptions } from './verify-pool.js'
export { readExportFile, readLines, writeExport, type ExportSource, type ExportSummary, type ReadLinesOptions } from './export.js'
export {
  auditExitCode, auditFile, auditLines, formatAuditReport,
  type AuditAuthor, type AuditFork, type AuditGap, type AuditOptions, type AuditProblem, type AuditProblemKind, type AuditReport
} from './audit.js'
export { EntryGossip, entryGossip, ENTRIES_TOPIC, FORKS_TOPIC, type EntryGossipComponents, type GossipPubSub } from './gossip/index.js'
export {
  LedgerSync, ledgerSync, SYNC_PROTOCOL, SYNC_PROTOCOL_DIGEST,
  type LearnOwnChainResult, type LedgerSyncComponents, type LedgerSyncInit, type LedgerSyncStats, type SyncNetwork
} from './sync/index.js'
