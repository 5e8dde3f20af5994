import { BuildhausError } from '../util/errors.js'

/** An entry failed decoding or verification. `reason` is a short machine-friendly cause. */
export class InvalidEntryError extends BuildhausError {
  override name = 'InvalidEntryError'
  readonly reason: InvalidEntryReason

  constructor (reason: InvalidEntryReason, message: string) {
    super(message)
    this.reason = reason
  }
}

export type InvalidEntryReason =
  | 'too-large'
  | 'not-json'
  | 'not-canonical'
  | 'bad-shape'
  | 'unknown-type'
  | 'bad-body'
  | 'bad-signature'

/** The ledger store was used after close(). */
export class LedgerClosedError extends BuildhausError {
  override name = 'LedgerClosedError'
}

/** LevelDB refused a write of entries from peers (a full disk?): no more are taken until a write succeeds. */
export class LedgerWriteError extends BuildhausError {
  override name = 'LedgerWriteError'
}

/** append() on a store opened without the node's key. */
export class ReadOnlyLedgerError extends BuildhausError {
  override name = 'ReadOnlyLedgerError'
}

/**
 * append() before allowAppend(): the node has not yet learnt its own chain
 * from the mesh, and writing now could fork it (a restored backup, or the
 * same key on a second machine).
 */
export class AppendNotAllowedError extends BuildhausError {
  override name = 'AppendNotAllowedError'
}

/** append() after this node's key ended its chain (it revoked the key). */
export class ChainEndedError extends BuildhausError {
  override name = 'ChainEndedError'
}

/** Two different entries signed by this node's own key at the same seq exist: appending is refused for good. */
export class SelfForkError extends BuildhausError {
  override name = 'SelfForkError'
}

/** A two-entry fork proof that does not prove anything (invalid entry, different authors or seqs, same id). */
export class InvalidForkProofError extends BuildhausError {
  override name = 'InvalidForkProofError'
}

/** A sync peer broke the protocol (bad frame, wrong order, over a limit); the stream is aborted. */
export class SyncProtocolError extends BuildhausError {
  override name = 'SyncProtocolError'
}
