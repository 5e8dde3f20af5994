import { TopicValidatorResult, type Message, type SubscriptionChangeData, type TopicValidatorFn } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { authorOfPeerId } from '../../crypto/peer-id.js'
import { describeError } from '../../util/errors.js'
import { TypedEvents } from '../../util/events.js'
import { componentLogger } from '../../util/logger.js'
import {
  HEARTBEAT_INTERVAL_MS, HEARTBEAT_VERSION, MAX_ADDRESS_LENGTH, MAX_ADDRESSES, MAX_PRESENCE_MEMBERS, MAX_PRESENCE_STRANGERS, MAX_REMEMBERED_SEQNOS, MAX_RUNNING, MIN_PUBLISH_GAP_MS,
  HEARTBEATS_PER_SECOND, MAX_HEARTBEAT_INTERVAL_MS, MEMBERS_PER_BASE_INTERVAL, PRESENCE_TIMEOUT_MS, PRESENCE_TOPIC, SWEEP_INTERVAL_MS
} from './constants.js'
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from './heartbeat.js'

const log = componentLogger('gossip:presence')

/** What presence needs of gossipsub: one topic, its validator, publishing. */
export interface PresencePubsub {
  topicValidators: Map<string, TopicValidatorFn>
  subscribe (topic: string): void
  unsubscribe (topic: string): void
  publish (topic: string, data: Uint8Array): Promise<unknown>
  /** Optional: lets a member that unsubscribes (a node stopping cleanly) leave at once instead of timing out. */
  addEventListener?: (type: 'subscription-change', listener: (event: CustomEvent<SubscriptionChangeData>) => void) => void
  removeEventListener?: (type: 'subscription-change', listener: (event: CustomEvent<SubscriptionChangeData>) => void) => void
}

export interface PresenceComponents {
  pubsub: PresencePubsub
  /** This node's peer id: heartbeats claiming to be ours are ignored. */
  peerId: PeerId
  /** This node's listen addresses, announced so that members who know it only through gossip can dial it. */
  addresses?: () => Array<{ toString(): string }>
}

export interface PresenceInit {
  platforms: string[]
  slots: number
  accepts?: { network: boolean, root: boolean }
  /** Environments ready to build in (announced as they become ready, through update()). */
  environments?: string[]
  /** This node polls watches (absent or false: it never does, so nobody designates it). */
  polls?: boolean
  version: string
  /** The API URL to advertise, if other machines can reach it. */
  api?: string
  intervalMs?: number
  timeoutMs?: number
  /** The member table's bounds (MAX_PRESENCE_MEMBERS, MAX_PRESENCE_STRANGERS). */
  maxMembers?: number
  maxStrangers?: number
  /**
   * Whether an author key (hex) is a member of the mesh: members keep their
   * place when the table is full, strangers are turned away or evicted first.
   * Injected by the node (membership lives in a higher layer); default: nobody is.
   */
  isMember?: (author: string) => boolean
  /** The clock, for tests. */
  now?: () => number
}

/** What this node says about itself; the jobs layer keeps `free` and `running` current through `update()`. */
export interface LocalPresence {
  platforms: string[]
  slots: number
  free: number
  running: string[]
  accepts: { network: boolean, root: boolean }
  /** Environments ready to build in; absent or empty: none. */
  environments?: string[]
  polls?: boolean
  version: string
  api?: string
}

export type PresenceUpdate = Partial<Pick<LocalPresence, 'free' | 'running' | 'accepts' | 'api' | 'environments'>>

/**
 * When an update reaches the mesh: `now` publishes at once (rate-limited by
 * MIN_PUBLISH_GAP_MS), `next` waits for the next heartbeat of the interval
 * (at most `announcesWithinMs()` away). Load that the log already carries (a
 * claim, a result) needs no heartbeat of its own: every other node would
 * receive and decode it for nothing.
 */
export interface PresenceUpdateOptions {
  announce?: 'now' | 'next'
}

/** A live member of the mesh, keyed by its author key. */
export interface PresenceMember {
  peerId: string
  /** The member's Ed25519 public key in hex: its name in the log. */
  author: string
  heartbeat: Heartbeat
  /** Local clock (ms since the epoch) when we first and last heard from it in this stretch of membership. */
  firstSeen: number
  lastSeen: number
}

export interface PresenceStats {
  /** Heartbeats accepted and forwarded. */
  accepted: number
  /** Messages refused by the topic validator (malformed, unsigned, not Ed25519): the sender is penalised. */
  rejected: number
  /** Stale or self-addressed heartbeats dropped without penalty (turned away ones included). */
  ignored: number
  /** Heartbeats of new strangers not recorded (nor forwarded) because the table had no place for them. */
  turnedAway: number
  /** Strangers evicted to make room for a member. */
  evicted: number
}

export interface PresenceEvents {
  join: CustomEvent<PresenceMember>
  leave: CustomEvent<PresenceMember>
  heartbeat: CustomEvent<PresenceMember>
}

interface MemberState extends PresenceMember {
  seqno: bigint
}

/**
 * Presence heartbeats: publishes this node's heartbeat every interval and keeps
 * the set of members heard from within the timeout. Heartbeats are signed by
 * gossipsub (StrictSign) with the sender's node key, so the sender is the
 * message's `from`; the topic validator refuses anything else, and refused
 * messages are never forwarded.
 */
export class Presence extends TypedEvents<PresenceEvents> {
  private readonly components: PresenceComponents
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly now: () => number
  private readonly selfId: string
  private readonly state: LocalPresence
  private readonly live = new Map<string, MemberState>()
  /** Last sequence number of senders who left, so a replay of an old heartbeat cannot bring them back. */
  private readonly departedSeqnos = new Map<string, bigint>()
  private readonly counters: PresenceStats = { accepted: 0, rejected: 0, ignored: 0, turnedAway: 0, evicted: 0 }
  private readonly maxMembers: number
  private readonly maxStrangers: number
  private readonly isMember: (author: string) => boolean
  /** Strangers in `live` (recounted at each sweep, as membership changes). */
  private strangers = 0
  private heartbeatTimer?: ReturnType<typeof setTimeout>
  /** The interval this node announces now (`every`), recomputed at each heartbeat from the mesh's size. */
  private every: number
  private sweepTimer?: ReturnType<typeof setInterval>
  private pendingPublish?: ReturnType<typeof setTimeout>
  private lastPublish = 0
  private running = false
  /** `leave()` was called: no more heartbeats, and the peers were told. */
  private left = false

  constructor (components: PresenceComponents, init: PresenceInit) {
    super()
    this.components = components
    this.intervalMs = init.intervalMs ?? HEARTBEAT_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? PRESENCE_TIMEOUT_MS
    this.every = this.intervalMs
    this.now = init.now ?? Date.now
    this.maxMembers = init.maxMembers ?? MAX_PRESENCE_MEMBERS
    this.maxStrangers = Math.min(init.maxStrangers ?? MAX_PRESENCE_STRANGERS, this.maxMembers)
    this.isMember = init.isMember ?? (() => false)
    this.selfId = components.peerId.toString()
    this.state = {
      platforms: [...init.platforms],
      slots: init.slots,
      free: init.slots,
      running: [],
      accepts: init.accepts ?? { network: false, root: false },
      environments: [...(init.environments ?? [])],
      ...(init.polls === true ? { polls: true } : {}),
      version: init.version,
      ...(init.api !== undefined ? { api: init.api } : {})
    }
    // Fail at construction, not at the first tick, if our own heartbeat would be refused by others.
    encodeHeartbeat(this.heartbeat())
  }

  isStarted (): boolean {
    return this.running
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.left = false
    const { pubsub } = this.components
    pubsub.topicValidators.set(PRESENCE_TOPIC, this.validate)
    pubsub.subscribe(PRESENCE_TOPIC)
    pubsub.addEventListener?.('subscription-change', this.onSubscriptionChange)
    this.sweepTimer = setInterval(() => { this.sweep() }, Math.min(SWEEP_INTERVAL_MS, this.timeoutMs))
    this.beat()
  }

  /** Publish, then schedule the next heartbeat at the interval the mesh's size calls for. */
  private beat (): void {
    if (!this.running || this.left) return
    this.every = this.intervalFor(this.live.size + 1)
    this.publishNow()
    this.heartbeatTimer = setTimeout(() => { this.beat() }, this.every)
  }

  /** The heartbeat interval for a mesh of `members` nodes (see MEMBERS_PER_BASE_INTERVAL and HEARTBEATS_PER_SECOND). */
  intervalFor (members: number): number {
    if (members <= MEMBERS_PER_BASE_INTERVAL) return this.intervalMs
    const scaled = Math.round(members * 1000 / HEARTBEATS_PER_SECOND)
    return Math.max(this.intervalMs, Math.min(MAX_HEARTBEAT_INTERVAL_MS, scaled))
  }

  /**
   * The longest this node goes without a heartbeat now: the interval it
   * announces (`every`). What update() keeps for the next heartbeat is in
   * the mesh within this time.
   */
  announcesWithinMs (): number {
    return this.every
  }

  /**
   * How long a member may stay silent before it counts as gone: the timeout,
   * stretched in proportion when the member announces a longer interval.
   */
  silenceAllowedFor (member: Pick<PresenceMember, 'heartbeat'>): number {
    const every = member.heartbeat.every ?? this.intervalMs
    return Math.max(this.timeoutMs, Math.round(every * this.timeoutMs / this.intervalMs))
  }

  /**
   * Tell the peers we are connected to that this node is leaving (it
   * unsubscribes from presence, so they drop it at once) and stop
   * heartbeats. A node calls this first when it shuts down, so that the
   * rest of its shutdown gives the message time to reach its peers and be
   * read before the connections close; `stop()` calls it too. Idempotent.
   */
  leave (): void {
    if (!this.running || this.left) return
    this.left = true
    clearTimeout(this.heartbeatTimer)
    clearTimeout(this.pendingPublish)
    try {
      this.components.pubsub.unsubscribe(PRESENCE_TOPIC)
    } catch (err) {
      log('unsubscribing at stop failed (was libp2p stopped first?): %s', describeError(err))
    }
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.leave()
    this.running = false
    clearInterval(this.sweepTimer)
    const { pubsub } = this.components
    pubsub.removeEventListener?.('subscription-change', this.onSubscriptionChange)
    if (pubsub.topicValidators.get(PRESENCE_TOPIC) === this.validate) pubsub.topicValidators.delete(PRESENCE_TOPIC)
    this.live.clear()
    this.strangers = 0
  }

  /** This node's own presence as it is advertised. */
  get local (): Readonly<LocalPresence> {
    return { ...this.state, platforms: [...this.state.platforms], running: [...this.state.running], environments: [...(this.state.environments ?? [])] }
  }

  /**
   * Change what this node advertises (free slots, running builds, …) and,
   * unless `announce: 'next'`, tell the mesh promptly rather than at the
   * next interval.
   */
  update (change: PresenceUpdate, options: PresenceUpdateOptions = {}): void {
    const next: LocalPresence = { ...this.state }
    if (change.free !== undefined) next.free = Math.min(change.free, next.slots)
    if (change.running !== undefined) next.running = change.running.slice(0, MAX_RUNNING)
    if (change.accepts !== undefined) next.accepts = { ...change.accepts }
    if (change.api !== undefined) next.api = change.api
    if (change.environments !== undefined) next.environments = [...change.environments]
    // Refuse (throw) before changing anything if the result would not be a valid heartbeat. Without the
    // addresses: they are libp2p's, not part of any change, and reading them (~0.2 ms) sat between a
    // claim and its build's start.
    encodeHeartbeat(this.heartbeatOf(next, false))
    Object.assign(this.state, next)
    if (!this.running || this.left || options.announce === 'next') return
    const wait = this.lastPublish + MIN_PUBLISH_GAP_MS - this.now()
    if (wait <= 0) {
      this.publishNow()
    } else if (this.pendingPublish === undefined) {
      this.pendingPublish = setTimeout(() => { this.pendingPublish = undefined; this.publishNow() }, wait)
    }
  }

  /** Live members other than this node, ordered by peer id (code unit order: localeCompare would load ICU's collation data into every node, ~2.4 MB resident). */
  members (): PresenceMember[] {
    return [...this.live.values()].map(publicMember).sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0))
  }

  /** The live member with this author key, if any. */
  member (author: string): PresenceMember | undefined {
    const found = this.live.get(author)
    return found !== undefined ? publicMember(found) : undefined
  }

  get size (): number {
    return this.live.size
  }

  get stats (): Readonly<PresenceStats> {
    return { ...this.counters }
  }

  /** The heartbeat this node would publish now. */
  heartbeat (): Heartbeat {
    return this.heartbeatOf(this.state)
  }

  private heartbeatOf (state: LocalPresence, withAddresses = true): Heartbeat {
    const addrs = withAddresses ? this.ownAddresses() : []
    return {
      v: HEARTBEAT_VERSION,
      platforms: state.platforms,
      slots: state.slots,
      free: Math.min(state.free, state.slots),
      running: state.running,
      accepts: state.accepts,
      ...(state.environments !== undefined && state.environments.length > 0 ? { environments: state.environments } : {}),
      ...(state.polls === true ? { polls: true } : {}),
      version: state.version,
      ...(state.api !== undefined ? { api: state.api } : {}),
      ...(addrs.length > 0 ? { addrs } : {}),
      ...(this.every !== this.intervalMs ? { every: this.every } : {}),
      time: this.now()
    }
  }

  private ownAddresses (): string[] {
    const suffix = `/p2p/${this.selfId}`
    const all = (this.components.addresses?.() ?? []).map((a) => {
      const text = a.toString()
      return text.endsWith(suffix) ? text.slice(0, -suffix.length) : text
    })
    return [...new Set(all)].filter((a) => a.length <= MAX_ADDRESS_LENGTH).slice(0, MAX_ADDRESSES)
  }

  private publishNow (): void {
    // After leave(), a heartbeat would tell the peers it is back.
    if (!this.running || this.left) return
    clearTimeout(this.pendingPublish)
    this.pendingPublish = undefined
    this.lastPublish = this.now()
    let data: Uint8Array
    try {
      data = encodeHeartbeat(this.heartbeat())
    } catch (err) {
      log.error('cannot encode our heartbeat: %s', describeError(err))
      return
    }
    this.components.pubsub.publish(PRESENCE_TOPIC, data).catch((err: unknown) => {
      // Routine while alone or while stopping; the next interval tries again.
      log('publishing a heartbeat failed: %s', describeError(err))
    })
  }

  /** Gossipsub's topic validator: the gate every heartbeat passes before delivery or forwarding. */
  private readonly validate = (_propagationSource: PeerId, message: Message): TopicValidatorResult => {
    if (message.type !== 'signed') return this.reject('unsigned message')
    const from = message.from.toString()
    let author: string
    try {
      author = authorOfPeerId(message.from)
    } catch (err) {
      return this.reject(describeError(err))
    }
    let heartbeat: Heartbeat
    try {
      heartbeat = decodeHeartbeat(message.data)
    } catch (err) {
      return this.reject(`from ${from}: ${describeError(err)}`)
    }
    if (from === this.selfId) {
      // Our own words coming back, or another machine running with our key: never a member.
      log('ignoring a heartbeat signed with our own key (is this node\'s key.pem copied to another machine?)')
      this.counters.ignored++
      return TopicValidatorResult.Ignore
    }
    const known = this.live.get(author)
    const lastSeqno = known?.seqno ?? this.departedSeqnos.get(author)
    if (lastSeqno !== undefined && message.sequenceNumber <= lastSeqno) {
      this.counters.ignored++
      return TopicValidatorResult.Ignore
    }
    if (known === undefined && !this.makeRoomFor(author)) {
      // Not refused (it is well-formed, and may be honest): neither recorded nor forwarded, and no penalty.
      this.counters.turnedAway++
      this.counters.ignored++
      return TopicValidatorResult.Ignore
    }
    this.counters.accepted++
    this.record(author, from, heartbeat, message.sequenceNumber)
    return TopicValidatorResult.Accept
  }

  /**
   * Whether a newcomer may join the table: a stranger only while strangers
   * hold fewer than `maxStrangers` places and the table has room; a member
   * always, evicting the stranger heard of most recently when the table is
   * full (a flood's newest keys, not the strangers that were there before it).
   */
  private makeRoomFor (author: string): boolean {
    const member = this.isMember(author)
    if (!member) return this.strangers < this.maxStrangers && this.live.size < this.maxMembers
    if (this.live.size < this.maxMembers) return true
    let newest: MemberState | undefined
    for (const candidate of this.live.values()) {
      if (this.isMember(candidate.author)) continue
      if (newest === undefined || candidate.firstSeen > newest.firstSeen) newest = candidate
    }
    if (newest === undefined) return false
    this.counters.evicted++
    this.depart(newest, 'evicted for a member (the table is full)')
    return true
  }

  private reject (why: string): TopicValidatorResult {
    this.counters.rejected++
    log('rejecting a presence message: %s', why)
    return TopicValidatorResult.Reject
  }

  private record (author: string, peerId: string, heartbeat: Heartbeat, seqno: bigint): void {
    const now = this.now()
    const known = this.live.get(author)
    if (known !== undefined) {
      known.heartbeat = heartbeat
      known.lastSeen = now
      known.seqno = seqno
      this.emit('heartbeat', publicMember(known))
      return
    }
    this.departedSeqnos.delete(author)
    const member: MemberState = { peerId, author, heartbeat, firstSeen: now, lastSeen: now, seqno }
    this.live.set(author, member)
    if (!this.isMember(author)) this.strangers++
    log('%s joined', peerId)
    this.emit('join', publicMember(member))
    this.emit('heartbeat', publicMember(member))
  }

  private sweep (): void {
    const now = this.now()
    for (const member of [...this.live.values()]) {
      if (now - member.lastSeen > this.silenceAllowedFor(member)) this.depart(member, `silent for ${now - member.lastSeen} ms`)
    }
    // Membership changes (vouches arrive): count again who is a stranger.
    let strangers = 0
    for (const member of this.live.values()) if (!this.isMember(member.author)) strangers++
    this.strangers = strangers
  }

  private depart (member: MemberState, why: string): void {
    this.live.delete(member.author)
    if (!this.isMember(member.author)) this.strangers = Math.max(0, this.strangers - 1)
    this.departedSeqnos.set(member.author, member.seqno)
    if (this.departedSeqnos.size > MAX_REMEMBERED_SEQNOS) {
      const oldest = this.departedSeqnos.keys().next().value
      if (oldest !== undefined) this.departedSeqnos.delete(oldest)
    }
    log('%s left (%s)', member.peerId, why)
    this.emit('leave', publicMember(member))
  }

  /** A directly connected member unsubscribed from presence: it is stopping, so it leaves now. */
  private readonly onSubscriptionChange = (event: CustomEvent<SubscriptionChangeData>): void => {
    if (!event.detail.subscriptions.some((s) => s.topic === PRESENCE_TOPIC && !s.subscribe)) return
    const member = [...this.live.values()].find((m) => m.peerId === event.detail.peerId.toString())
    if (member !== undefined) this.depart(member, 'unsubscribed')
  }
}

function publicMember (member: MemberState): PresenceMember {
  return { peerId: member.peerId, author: member.author, heartbeat: member.heartbeat, firstSeen: member.firstSeen, lastSeen: member.lastSeen }
}
