import type { DecodedEntry } from '../ledger/entry.js'
import { describeError } from '../util/errors.js'
import { TypedEvents } from '../util/events.js'
import { componentLogger } from '../util/logger.js'
import { REVOKE_TYPE, UNVOUCH_TYPE, VOUCH_TYPE } from './constants.js'
import type { MeshDefinition } from './definition.js'
import { isMembershipEntry, leastFixedPoint, type MembershipView } from './fold.js'
import { VouchBook } from './vouch-book.js'

const log = componentLogger('membership')

/** What the live membership needs of the log: the entries of a type, new entries as stored, and forked authors. */
export interface MembershipLedger extends EventTarget {
  byType (type: string): AsyncIterable<DecodedEntry>
  equivocatingAuthors (): string[]
}

/** Whether the ledger's quotas treat an author as one of us. */
export type Standing = 'member' | 'stranger'

export type MeshMembershipEvents = {
  /** The set of members changed (a vouch, an unvouch, a revoke or a fork); detail: the new view. */
  change: CustomEvent<MembershipView>
}

export interface MeshMembershipOptions {
  definition: MeshDefinition
  ledger: MembershipLedger
}

/**
 * The node's live view of who is a member of its mesh: the log's vouch,
 * unvouch and revoke entries indexed as they are stored, the ledger's forked
 * authors barred, and the least fixed point recomputed when an entry could
 * change it (a member's vouch or unvouch, any revoke, a fork): once after a
 * batch of such entries, or at the next read, whichever comes first. A
 * non-member's vouch is kept (it counts once its author is admitted) but
 * cannot change the set, so it costs no recomputation. Every read equals
 * `foldMembership` over the entries stored so far.
 */
export class MeshMembership extends TypedEvents<MeshMembershipEvents> {
  readonly definition: MeshDefinition
  private readonly ledger: MembershipLedger
  private readonly book = new VouchBook()
  private readonly revoked = new Set<string>()
  private current: MembershipView
  private memberSet: ReadonlySet<string>
  private buffered: DecodedEntry[] | undefined
  private started = false
  /** An entry that may change membership arrived; the fixed point is recomputed once per batch (or on the next read). */
  private dirty = false
  private flushQueued = false
  private readonly onEntry = (evt: Event): void => {
    const entry = (evt as CustomEvent<DecodedEntry>).detail
    if (!isMembershipEntry(entry)) return
    if (this.buffered !== undefined) this.buffered.push(entry)
    else this.take(entry, true)
  }

  private readonly onFork = (): void => { this.recompute() }

  constructor (options: MeshMembershipOptions) {
    super()
    this.definition = options.definition
    this.ledger = options.ledger
    this.current = leastFixedPoint(this.definition, this.book, new Map())
    this.memberSet = new Set(this.current.members.map((m) => m.key))
  }

  /** Read every vouch, unvouch and revoke in the log, then follow new ones. */
  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    // Listen first (entries stored meanwhile are held, then taken after the load, in order).
    this.buffered = []
    this.ledger.addEventListener('entry', this.onEntry)
    this.ledger.addEventListener('fork', this.onFork)
    try {
      const loaded: DecodedEntry[] = []
      for (const type of [VOUCH_TYPE, UNVOUCH_TYPE, REVOKE_TYPE]) {
        for await (const entry of this.ledger.byType(type)) loaded.push(entry)
      }
      // An author's entries in seq order (the index takes each author's chain in order).
      loaded.sort((a, b) => (a.entry.author < b.entry.author ? -1 : a.entry.author > b.entry.author ? 1 : a.entry.seq - b.entry.seq))
      for (const entry of loaded) this.take(entry, false)
      for (const entry of this.buffered) this.take(entry, false)
      this.dirty = true
    } finally {
      this.buffered = undefined
    }
    this.recompute()
    log('mesh %s: %d members (%d founders, admit %d)', this.definition.name, this.memberSet.size, this.definition.founders.length, this.definition.admit)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.ledger.removeEventListener('entry', this.onEntry)
    this.ledger.removeEventListener('fork', this.onFork)
  }

  /** Whether `author` (64 hex) is a member now. For the ledger's quotas and the connection gater. */
  isMember (author: string): boolean {
    return this.fresh().has(author)
  }

  /** 'member' or 'stranger': the hook the ledger's quotas take. */
  standing (author: string): Standing {
    return this.fresh().has(author) ? 'member' : 'stranger'
  }

  /** The members' keys now (a snapshot: it never changes after it is returned). */
  members (): ReadonlySet<string> {
    return this.fresh()
  }

  /** Who is a member, by whose vouches, who is waiting for vouches, who is barred. */
  view (): MembershipView {
    this.fresh()
    return this.current
  }

  /** Records held by the index: one per (voucher, key) pair ever named, at most MAX_VOUCH_TARGETS per author. */
  get indexSize (): number {
    return this.book.size
  }

  private take (entry: DecodedEntry, live: boolean): void {
    const { author, seq, type } = entry.entry
    if (!this.book.isNew(author, seq)) return
    let mayChange: boolean
    if (type === REVOKE_TYPE) {
      this.book.skip(author, seq)
      this.revoked.add(author)
      mayChange = true
    } else {
      const changed = this.book.add(author, seq, (entry.entry.body as { member: string }).member, type === VOUCH_TYPE)
      // A non-member's vouch counts only once its author is admitted: it cannot change the set now.
      mayChange = changed && this.memberSet.has(author)
    }
    if (!mayChange) return
    this.dirty = true
    // A batch of entries (one ingest) costs one recomputation, after it.
    if (live && !this.flushQueued) {
      this.flushQueued = true
      setImmediate(() => { this.flushQueued = false; this.fresh() })
    }
  }

  /** The member set, recomputed first if an entry that may change it has arrived. */
  private fresh (): ReadonlySet<string> {
    if (this.dirty) this.recompute()
    return this.memberSet
  }

  private recompute (): void {
    this.dirty = false
    const barred = new Map<string, 'revoked' | 'forked'>()
    try {
      for (const author of this.ledger.equivocatingAuthors()) barred.set(author, 'forked')
    } catch (err) {
      log.error('could not read the forked authors: %s', describeError(err))
    }
    for (const author of this.revoked) barred.set(author, 'revoked')
    const view = leastFixedPoint(this.definition, this.book, barred)
    const before = this.memberSet
    this.current = view
    const after = new Set(view.members.map((m) => m.key))
    this.memberSet = after
    if (after.size !== before.size || [...after].some((key) => !before.has(key))) {
      log('mesh %s: %d members now (was %d)', this.definition.name, after.size, before.size)
      if (this.started) this.emit('change', view)
    }
  }
}
