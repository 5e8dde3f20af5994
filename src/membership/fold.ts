import type { CheckedEntry } from '../ledger/entry.js'
import { REVOKE_TYPE, UNVOUCH_TYPE, VOUCH_TYPE } from './constants.js'
import type { MeshDefinition } from './definition.js'
import { VouchBook } from './vouch-book.js'

/** A member, and the members whose vouch for it is live. */
export interface MemberRecord {
  key: string
  founder: boolean
  /** Members whose latest word on this key is a vouch, sorted. A founder needs none. */
  vouchers: string[]
}

/** A key some members vouch for, not (yet) enough to admit it. */
export interface CandidateRecord {
  key: string
  vouchers: string[]
  /** More members' vouches it needs. */
  needed: number
}

/** A founder or vouched-for key that can never be a member. */
export interface BarredRecord {
  key: string
  reason: 'revoked' | 'forked'
}

/** Who is a member, by whose vouches: plain JSON, equal for equal inputs. */
export interface MembershipView {
  mesh: string
  admit: number
  /** Sorted by key. */
  members: MemberRecord[]
  candidates: CandidateRecord[]
  barred: BarredRecord[]
}

/** Keys that can never be members, with why (revoked wins over forked when both). */
export type Barred = ReadonlyMap<string, 'revoked' | 'forked'>

/**
 * The least fixed point: start from the founders that are not barred, and
 * add any key with at least `admit` live vouches from keys already in the
 * set, until nothing changes. Monotone (a larger set only adds vouches), so
 * the result is one set whatever the order of work: the node's live index
 * and the audit's fold compute the same.
 */
export function leastFixedPoint (definition: MeshDefinition, book: VouchBook, barred: Barred): MembershipView {
  const members = new Set<string>()
  const queue: string[] = []
  for (const founder of definition.founders) {
    if (barred.has(founder) || members.has(founder)) continue
    members.add(founder)
    queue.push(founder)
  }
  const counts = new Map<string, number>()
  while (queue.length > 0) {
    const voucher = queue.pop()!
    for (const key of book.liveOf(voucher)) {
      if (key === voucher || members.has(key) || barred.has(key)) continue
      const count = (counts.get(key) ?? 0) + 1
      counts.set(key, count)
      if (count >= definition.admit) {
        members.add(key)
        queue.push(key)
      }
    }
  }
  const vouchersOf = new Map<string, string[]>()
  for (const voucher of members) {
    for (const key of book.liveOf(voucher)) {
      if (key === voucher) continue
      const list = vouchersOf.get(key)
      if (list === undefined) vouchersOf.set(key, [voucher])
      else list.push(voucher)
    }
  }
  const founders = new Set(definition.founders)
  const byKey = (a: { key: string }, b: { key: string }): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  const memberRecords: MemberRecord[] = [...members].map((key) => ({ key, founder: founders.has(key), vouchers: (vouchersOf.get(key) ?? []).sort() })).sort(byKey)
  const candidates: CandidateRecord[] = []
  const barredRecords: BarredRecord[] = []
  for (const [key, vouchers] of vouchersOf) {
    if (members.has(key)) continue
    const reason = barred.get(key)
    if (reason !== undefined) barredRecords.push({ key, reason })
    else candidates.push({ key, vouchers: vouchers.sort(), needed: definition.admit - vouchers.length })
  }
  for (const founder of founders) {
    const reason = barred.get(founder)
    if (reason !== undefined && !vouchersOf.has(founder)) barredRecords.push({ key: founder, reason })
  }
  return { mesh: definition.name, admit: definition.admit, members: memberRecords, candidates: candidates.sort(byKey), barred: barredRecords.sort(byKey) }
}

/** Whether an entry is one the membership fold reads. */
export function isMembershipEntry (entry: CheckedEntry): boolean {
  const type = entry.entry.type
  return type === VOUCH_TYPE || type === UNVOUCH_TYPE || type === REVOKE_TYPE
}

export interface FoldMembershipOptions {
  /** Authors known to have forked their chain (e.g. from an audit's fork report, or the ledger's). */
  forked?: Iterable<string>
}

/**
 * Membership as a pure function of the entries held, in any order: each
 * author's vouch/unvouch entries taken by seq (its latest word on a key is
 * live), revoked authors (a `revoke` entry) and forked ones (given, or two
 * entries at one seq among these) barred, then the least fixed point.
 */
export function foldMembership (definition: MeshDefinition, entries: Iterable<CheckedEntry>, options: FoldMembershipOptions = {}): MembershipView {
  const barred = new Map<string, 'revoked' | 'forked'>()
  for (const author of options.forked ?? []) barred.set(author, 'forked')
  const relevant: CheckedEntry[] = []
  const atSeq = new Map<string, string>()
  for (const e of entries) {
    if (!isMembershipEntry(e)) continue
    const slot = `${e.entry.author}/${e.entry.seq}`
    const other = atSeq.get(slot)
    if (other === e.id) continue
    if (other !== undefined) barred.set(e.entry.author, barred.get(e.entry.author) === 'revoked' ? 'revoked' : 'forked')
    atSeq.set(slot, e.id)
    relevant.push(e)
  }
  relevant.sort((a, b) => (a.entry.author < b.entry.author ? -1 : a.entry.author > b.entry.author ? 1 : a.entry.seq - b.entry.seq))
  const book = new VouchBook()
  for (const e of relevant) {
    if (e.entry.type === REVOKE_TYPE) {
      barred.set(e.entry.author, 'revoked')
      book.skip(e.entry.author, e.entry.seq)
      continue
    }
    book.add(e.entry.author, e.entry.seq, (e.entry.body as { member: string }).member, e.entry.type === VOUCH_TYPE)
  }
  return leastFixedPoint(definition, book, barred)
}
