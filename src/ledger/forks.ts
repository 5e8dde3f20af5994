import type { DecodedEntry, EntryCodec } from './entry.js'
import { InvalidEntryError, InvalidForkProofError } from './errors.js'

/**
 * Proof that an author equivocated: two validly signed entries with the same
 * author and seq but different ids. Anyone can check it with the author's
 * public key alone. When this node holds one of the two on its chain, that
 * one comes first.
 */
export interface ForkProof {
  readonly author: string
  readonly seq: number
  readonly entries: readonly [DecodedEntry, DecodedEntry]
}

/** Throw InvalidForkProofError unless (a, b) is a fork: same author, same seq, different ids. Signatures are the caller's to check. */
export function checkForkPair (a: DecodedEntry, b: DecodedEntry): void {
  if (a.entry.author !== b.entry.author) throw new InvalidForkProofError('the two entries of a fork proof have different authors, so they prove nothing')
  if (a.entry.seq !== b.entry.seq) throw new InvalidForkProofError('the two entries of a fork proof have different seqs, so they prove nothing')
  if (a.id === b.id) throw new InvalidForkProofError('the two entries of a fork proof are the same entry, so they prove nothing')
}

/** Wire form of a proof (gossip, sync): the two entry lines separated by a newline. */
export function encodeForkProof (proof: ForkProof): string {
  return `${proof.entries[0].line}\n${proof.entries[1].line}`
}

/**
 * Decode and fully check a proof in wire form: both lines valid entries with
 * good signatures, and a real fork. Throws InvalidForkProofError.
 */
export function decodeForkProof (codec: EntryCodec, text: string): ForkProof {
  const parts = text.split('\n')
  if (parts.length !== 2) throw new InvalidForkProofError(`a fork proof is two entry lines, got ${parts.length}`)
  const decoded = parts.map((line, i) => {
    try {
      return codec.decode(line)
    } catch (err) {
      if (err instanceof InvalidEntryError) throw new InvalidForkProofError(`entry ${i + 1} of the fork proof is invalid: ${err.message}`)
      throw err
    }
  })
  const [a, b] = decoded as [DecodedEntry, DecodedEntry]
  checkForkPair(a, b)
  return { author: a.entry.author, seq: a.entry.seq, entries: [a, b] }
}
