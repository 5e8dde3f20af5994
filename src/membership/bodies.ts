import { z } from 'zod'
import type { EntryTypeRules } from '../ledger/entry.js'
import { UNVOUCH_TYPE, VOUCH_TYPE } from './constants.js'

/**
 * The bodies of `vouch` and `unvouch`: `{ member: "<64 hex>" }`, strict (no
 * other field). A vouch says "I, the author, count this key as one of us";
 * an unvouch withdraws it. Only an author's latest word on a key (by its seq)
 * is live. Neither refers to an entry: `member` is a key, not an entry id.
 */
export const vouchBodySchema = z.strictObject({
  member: z.string().regex(/^[0-9a-f]{64}$/, 'must be a public key (64 lower-case hex digits)')
})

export type VouchBody = z.infer<typeof vouchBodySchema>

function validate (body: unknown): void {
  const parsed = vouchBodySchema.safeParse(body)
  if (parsed.success) return
  const unknown = parsed.error.issues.find((issue) => issue.code === 'unrecognized_keys')
  if (unknown !== undefined) throw new Error(`has unknown field${unknown.keys.length > 1 ? 's' : ''} ${unknown.keys.map((k) => JSON.stringify(k)).join(', ')}; the body is { member }`)
  throw new Error('member must be a public key (64 lower-case hex digits)')
}

/** The rules the ledger's EntryCodec needs for the membership types. */
export const membershipEntryRules: EntryTypeRules = {
  [VOUCH_TYPE]: { validate },
  [UNVOUCH_TYPE]: { validate }
}
