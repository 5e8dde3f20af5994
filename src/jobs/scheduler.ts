import { InvalidInputError } from '../util/errors.js'
import { CLAIM_ESCALATE_MS, HEARTBEAT_HOLD_MS, maxClaimHoldMs } from './constants.js'
import { rank, type RankCache } from './rendezvous.js'
import { offersAll, slotKey } from './selector.js'
import { shortKey } from './verdict.js'
import type { JobView, LivenessNote, PlatformView } from './view.js'

/**
 * Claiming without a master: each node decides alone, from the log (folded
 * job views) and live presence, which slots it should claim now. Every node
 * runs the same deterministic plan over the same inputs, so they agree on who
 * takes what without talking; when their inputs differ for a moment (a
 * heartbeat not yet heard) the worst case is a duplicate run, which is
 * harmless evidence.
 */

/** A live node as presence knows it; gossip's member records satisfy this structurally. */
export interface Member {
  author: string
  platforms: string[]
  slots: number
  free: number
  /** `<job id>/<selector>` of every slot it is running. */
  running: string[]
  accepts: { network: boolean, root: boolean }
  /** The environments it has ready to build in (a platform with an environment needs it). */
  environments?: string[]
  /** It polls watches (see watches.ts); absent: it does not. */
  polls?: boolean
  lastSeen: number
  /**
   * When it last wrote a claim or a result (its own time, from the log):
   * a node doing that is working, not stuck, so escalation past it waits.
   */
  lastActive?: number
}

export type Admission = { ok: true } | { ok: false, reason: string }

export interface SelfNode {
  author: string
  platforms: string[]
  /** The environments it has ready (as Member.environments). */
  environments?: string[]
  free: number
  /** As Member.lastActive. */
  lastActive?: number
  /** `<job id>/<selector>` of the slots it is running (its own claims past their lease still hold while listed). */
  running?: string[]
  /** The volunteer's full admission policy; others only see its `accepts` flags. */
  admit: (job: JobView) => Admission
}

export interface ClaimInput {
  now: number
  self: SelfNode
  /** Live members, including self. */
  members: Member[]
  /** Open jobs (decided and cancelled ones are skipped anyway). */
  jobs: JobView[]
  leaseMs: number
  /**
   * Whom the reader counts (members, or its trust list); default everyone.
   * Only counted live members are candidates: a result nobody counts is no
   * replica, so a node the reader does not count is never designated, and
   * this node claims nothing while it is not counted itself.
   */
  counts?: Counts
  /**
   * The caller's ranking cache (kept across plans): each slot's candidates
   * are hashed once instead of on every plan; slots no longer open are
   * forgotten. Absent: every plan ranks afresh (the same order).
   */
  ranking?: RankCache
}

export interface ClaimDecision {
  job: string
  platform: string
  /** Self's place (0 = first) in the slot's rendezvous ranking of eligible nodes. */
  rank: number
  /** The lease to write in the claim: now + leaseMs. */
  lease: number
  reason: string
}

/** A slot the mesh expects this node to take but its private policy refuses: publish a `refused` result so the next node takes it. */
export interface RefusalDecision {
  job: string
  platform: string
  reason: string
}

/** Who has taken part in a slot, and how many more builders it needs now. */
export interface SlotState {
  /** Builders with a non-refused result. */
  delivered: Set<string>
  /** Builders whose only results are refusals. */
  refused: Set<string>
  /** Builders with a result or a claim that holds the slot: not candidates for it. */
  involved: Set<string>
  /**
   * Builders whose claim lapsed without a result (crashed, restarted):
   * candidates again, but ranked after every node that never claimed.
   */
  lapsed: Set<string>
  /** Claimants whose claim still holds the slot, and live members whose heartbeat says they run it before their claim arrived. */
  holding: string[]
  /**
   * Claimants whose claim would hold but came after the slot was full
   * (nodes claimed at once while their views differed): the earliest claims
   * in fold order keep the slot, these stop their runs. Candidates again,
   * like lapsed ones.
   */
  yielded: string[]
  /** replicas − delivered − holding. */
  missing: number
  /**
   * When the slot last changed, ms since the epoch: the latest of the job's
   * time, each counted builder's first claim and first result there, and
   * the moment each claim that no longer holds stopped holding.
   */
  since: number
}

/**
 * Who the reader counts among the live members (a member of the mesh, or on
 * its trust list). Claims and results carry the fold's own `trusted` flag;
 * presence does not, so planning asks this.
 */
export type Counts = (author: string) => boolean

const everyone: Counts = () => true

/**
 * The slot as the reader's policy sees it. Only counted builders' claims and
 * results take part: a stranger's claim holds nothing and makes nobody
 * yield, its result delivers nothing.
 *
 * A counted builder's claims hold the slot while the latest lease among them
 * has not passed, or while the builder is live and lists the slot as running
 * (heartbeats renew it), but never past `maxClaimHoldMs(timeout)` after the
 * `time` of its first claim on the slot: a lease of 2^53-1, a claim written
 * again and again, or heartbeats that say "running" forever hold one bounded
 * lease at most. A counted live member whose heartbeat lists the slot before
 * any claim of it arrived holds a place for HEARTBEAT_HOLD_MS after the
 * slot's last change.
 */
export function slotState (job: JobView, platform: PlatformView, now: number, live: ReadonlyMap<string, Member>, counts: Counts = everyone): SlotState {
  const delivered = new Set<string>()
  const refusedAny = new Set<string>()
  const firstResult = new Map<string, number>()
  for (const r of platform.results) {
    if (!r.trusted) continue
    ;(r.status === 'refused' ? refusedAny : delivered).add(r.builder)
    firstResult.set(r.builder, Math.min(firstResult.get(r.builder) ?? Infinity, r.time))
  }
  const refused = new Set([...refusedAny].filter((b) => !delivered.has(b)))
  const leases = new Map<string, { lease: number, first: number }>()
  for (const c of platform.claims) {
    if (!c.trusted) continue
    const held = leases.get(c.builder)
    leases.set(c.builder, { lease: Math.max(held?.lease ?? 0, c.lease), first: Math.min(held?.first ?? Infinity, c.time) })
  }
  const key = slotKey(job.id, platform.selector)
  const maxHold = maxClaimHoldMs(job.spec.timeout)
  const holding: string[] = []
  // Each builder moves the slot at most twice (its first claim, its first result): re-claims cannot keep it "fresh".
  let since = job.time
  for (const { first } of leases.values()) since = Math.max(since, first)
  for (const time of firstResult.values()) since = Math.max(since, time)
  for (const [builder, claim] of leases) {
    if (delivered.has(builder) || refused.has(builder)) continue
    const bound = claim.first + maxHold
    const lease = Math.min(claim.lease, bound)
    if (now < lease) { holding.push(builder); continue }
    const member = live.get(builder)
    if (member !== undefined && member.running.includes(key)) {
      if (now < bound) { holding.push(builder); continue }
      since = Math.max(since, bound)
    } else {
      since = Math.max(since, lease)
    }
  }
  // More holding claims than places left: the earliest claims (fold order: Lamport clock, author) keep them.
  const places = Math.max(0, platform.replicas - delivered.size)
  let yielded: string[] = []
  if (holding.length > places) {
    const firstClaim = new Map<string, number>()
    platform.claims.forEach((c, i) => { if (c.trusted && !firstClaim.has(c.builder)) firstClaim.set(c.builder, i) })
    holding.sort((a, b) => firstClaim.get(a)! - firstClaim.get(b)!)
    yielded = holding.slice(places).sort()
    holding.length = places
  }
  // A counted live member whose heartbeat lists the slot as running, with no claim of it seen yet: its
  // claim is on its way (a node writes its claim as its run starts, and the heartbeat may come first).
  // Count it as holding a place left, or others would pass it over as busy and claim too; but only
  // shortly after the slot last changed, so that a heartbeat alone cannot hold a place for long.
  if (now < since + HEARTBEAT_HOLD_MS) {
    for (const member of live.values()) {
      if (holding.length >= places) break
      if (!member.running.includes(key) || !counts(member.author) || leases.has(member.author) || delivered.has(member.author) || refusedAny.has(member.author)) continue
      holding.push(member.author)
    }
  }
  holding.sort()
  const involved = new Set([...holding, ...delivered, ...refusedAny])
  const lapsed = new Set([...leases.keys()].filter((b) => !involved.has(b)))
  return { delivered, refused, involved, lapsed, holding, yielded, missing: platform.replicas - delivered.size - holding.length, since }
}

/** How an admission policy's refusal reason starts (src/sandbox/policy.ts says the same). */
const POLICY_REFUSAL_PREFIX = 'refused by policy: '
/** How a refusal for want of the job's source starts (service/runner.ts). */
export const SOURCE_REFUSAL_PREFIX = 'could not get the source '

/** How a refusal for want of the job's environment starts (service/runner.ts): unknown packages, an unreachable archive… */
export const ENVIRONMENT_REFUSAL_PREFIX = 'could not prepare the environment '

/** Whether a member can build a platform: it offers every label, and the platform's environment if it names one. */
export function canBuild (member: Pick<Member, 'platforms' | 'environments'>, platform: Pick<PlatformView, 'labels' | 'environment'>): boolean {
  return offersAll(member.platforms, platform.labels) && (platform.environment === undefined || (member.environments ?? []).includes(platform.environment))
}

/** What a member's public policy flags refuse in this job (`network`, `root`); empty when it accepts. */
export function policyRefusals (member: Pick<Member, 'accepts'>, job: JobView): string[] {
  const refusals: string[] = []
  if (job.spec.network && !member.accepts.network) refusals.push('network')
  if (job.spec.root && !member.accepts.root) refusals.push('root')
  return refusals
}

/**
 * Whether a platform still wants builders: not cancelled, and either this
 * reader's policy has not decided it, or fewer distinct builders than the
 * submitter's `replicas` have reported. A node whose quorum is below the
 * replica count decides early; the remaining replicas are still built, for
 * every reader whose policy needs them (the default quorum is the replica
 * count), so the scheduler never depends on the local reader's policy.
 */
export function wantsBuilders (job: JobView, platform: PlatformView): boolean {
  if (job.cancelled || job.verdict === 'cancelled') return false
  if (platform.verdict === 'pending' || platform.verdict === 'unmatched') return true
  // Only counted builders' results: a stranger's cannot fill the slot and stop the honest replicas.
  const reported = new Set(platform.results.filter((r) => r.trusted && r.status !== 'refused').map((r) => r.builder))
  return reported.size < platform.replicas
}

const isOpen = wantsBuilders

interface Slot { job: JobView, platform: PlatformView, index: number }

function compareSlots (a: Slot, b: Slot): number {
  return a.job.clock - b.job.clock || a.job.time - b.job.time ||
    (a.job.id < b.job.id ? -1 : a.job.id > b.job.id ? 1 : 0) || a.index - b.index
}

/**
 * Fair share: round-robin over submitters (in order of their oldest open
 * slot), each submitter's slots oldest first (Lamport clock, then time, then
 * id). A submitter with a hundred queued jobs gets one slot per round like
 * everyone else.
 */
export function fairShareOrder (jobs: readonly JobView[]): Array<{ job: JobView, platform: PlatformView }> {
  const bySubmitter = new Map<string, Slot[]>()
  const seen = new Set<string>()
  for (const job of jobs) {
    if (seen.has(job.id)) continue
    seen.add(job.id)
    job.platforms.forEach((platform, index) => {
      if (!isOpen(job, platform)) return
      const list = bySubmitter.get(job.submitter)
      if (list === undefined) bySubmitter.set(job.submitter, [{ job, platform, index }])
      else list.push({ job, platform, index })
    })
  }
  const queues = [...bySubmitter.values()].map((slots) => slots.sort(compareSlots)).sort((a, b) => compareSlots(a[0]!, b[0]!))
  const total = queues.reduce((n, queue) => n + queue.length, 0)
  const ordered: Array<{ job: JobView, platform: PlatformView }> = []
  for (let round = 0; ordered.length < total; round++) {
    for (const queue of queues) {
      const slot = queue[round]
      if (slot !== undefined) ordered.push({ job: slot.job, platform: slot.platform })
    }
  }
  return ordered
}

/**
 * The plan every node computes alike: slots in fair-share order; per slot,
 * the live members that offer its labels, whose public flags accept the job
 * and that neither hold a claim on it nor reported on it, ranked by
 * rendezvous (those whose earlier claim lapsed come last); the
 * first `missing` of them with a free slot left (busy ones are passed over,
 * and each designation uses up one of the member's free slots) are
 * designated. Self claims what it is designated for if its own policy admits
 * the job, and otherwise refuses it publicly.
 */
export function planClaims (input: ClaimInput): { claims: ClaimDecision[], refusals: RefusalDecision[] } {
  const { now, self } = input
  const counts = input.counts ?? everyone
  const live = new Map<string, Member>()
  for (const m of input.members) if (counts(m.author)) live.set(m.author, m)
  if (!counts(self.author)) return { claims: [], refusals: [] }
  const heard = live.get(self.author)
  // Self's own platforms and free slots are authoritative; its public flags are what others see.
  live.set(self.author, {
    author: self.author,
    platforms: self.platforms,
    slots: heard?.slots ?? self.free,
    free: self.free,
    running: self.running ?? heard?.running ?? [],
    accepts: heard?.accepts ?? { network: true, root: true },
    ...(self.environments !== undefined ? { environments: self.environments } : heard?.environments !== undefined ? { environments: heard.environments } : {}),
    lastSeen: heard?.lastSeen ?? now,
    ...(self.lastActive !== undefined ? { lastActive: self.lastActive } : heard?.lastActive !== undefined ? { lastActive: heard.lastActive } : {})
  })
  const remaining = new Map<string, number>()
  for (const m of live.values()) remaining.set(m.author, Math.max(0, m.free))

  const eligible = (m: Member, job: JobView, platform: PlatformView, state: SlotState): boolean =>
    canBuild(m, platform) && policyRefusals(m, job).length === 0 && !state.involved.has(m.author)
  const me = live.get(self.author)!
  const slots = fairShareOrder(input.jobs).map(({ job, platform }) => ({ job, platform, state: slotState(job, platform, now, live, counts) }))
  const ranking = input.ranking
  ranking?.retain(new Set(slots.map(({ job, platform }) => slotKey(job.id, platform.selector))))
  const rankOf = (jobId: string, selector: string, candidates: string[]): string[] => ranking !== undefined ? ranking.rank(jobId, selector, candidates) : rank(jobId, selector, candidates)
  // Slots after the last one self could take cannot change what self does: skip their hashing.
  let last = -1
  slots.forEach(({ job, platform, state }, i) => { if (state.missing > 0 && eligible(me, job, platform, state)) last = i })

  const claims: ClaimDecision[] = []
  const refusals: RefusalDecision[] = []
  for (const { job, platform, state } of slots.slice(0, last + 1)) {
    // Once self has no free slot left, nothing later can designate it.
    if (remaining.get(self.author) === 0) break
    if (state.missing <= 0) continue
    const candidates = [...live.values()].filter((m) => eligible(m, job, platform, state)).map((m) => m.author)
    const ranked = [
      ...rankOf(job.id, platform.selector, candidates.filter((a) => !state.lapsed.has(a))),
      ...rankOf(job.id, platform.selector, candidates.filter((a) => state.lapsed.has(a)))
    ]
    const free = ranked.filter((author) => (remaining.get(author) ?? 0) > 0)
    // Escalate past designated nodes only while they write nothing at all: one that claims and
    // delivers elsewhere is working through a queue, and an extra node now would duplicate its run.
    const quietSince = Math.max(state.since, ...free.slice(0, state.missing).map((author) => live.get(author)?.lastActive ?? 0))
    const wanted = state.missing + escalation(state.missing, now - quietSince)
    const designated = free.slice(0, wanted)
    const passedOver = ranked.slice(0, designated.length === 0 ? ranked.length : ranked.indexOf(designated.at(-1)!)).filter((author) => !designated.includes(author))
    for (const author of designated) remaining.set(author, remaining.get(author)! - 1)
    if (!designated.includes(self.author)) continue
    const admission = self.admit(job)
    if (!admission.ok) {
      refusals.push({ job: job.id, platform: platform.selector, reason: admission.reason })
      continue
    }
    const place = ranked.indexOf(self.author)
    const busy = passedOver.length > 0 ? `; passed over busy ${passedOver.map(shortKey).join(', ')}` : ''
    const waited = wanted > state.missing ? `; unclaimed for ${Math.floor((now - quietSince) / 1000)} s` : ''
    claims.push({
      job: job.id,
      platform: platform.selector,
      rank: place,
      lease: now + input.leaseMs,
      reason: `ranked ${place + 1} of ${ranked.length} eligible for ${platform.selector}, ${state.missing} replica${state.missing > 1 ? 's' : ''} missing${busy}${waited}`
    })
  }
  return { claims, refusals }
}

/** Extra designations for a slot that has waited `quietMs`: one per CLAIM_ESCALATE_MS without change, at most `missing`. */
function escalation (missing: number, quietMs: number): number {
  return Math.max(0, Math.min(missing, Math.floor(quietMs / CLAIM_ESCALATE_MS)))
}

/** The slots this node should claim right now (never more than self.free). */
export function decideClaims (input: ClaimInput): ClaimDecision[] {
  return planClaims(input).claims
}

/** The slots this node is designated for but its private policy refuses. */
export function decideRefusals (input: ClaimInput): RefusalDecision[] {
  return planClaims(input).refusals
}

/**
 * Why nobody takes a pending platform, from live presence:
 * - `unmatched: no live node offers linux-arm64`, or, when nodes the reader
 *   does not count offer it, `unmatched: no live node whose results count
 *   offers linux-arm64 (2 non-members do)`;
 * - `unmatched: no live node offers the environment debian-12` (N nodes
 *   offer the labels but do not have the environment ready);
 * - `refused: could not get the source …` when a builder that could not fetch
 *   the source refused too (a lost source, not a policy);
 * - `refused by policy: network` when every matching node that could still
 *   take part refuses the job (by its public flags or a `refused` result);
 * - `unmatched: all N live nodes offering X already took part; …` when
 *   more replicas are wanted than live matching nodes exist;
 * - `queued: all N matching nodes are busy` (the verdict stays pending);
 * - undefined when someone holds or can take the slot now.
 * Only the members `counting` counts are candidates (default: everyone).
 */
export function explainUnmatched (job: JobView, selector: string, members: readonly Member[], now: number, counting?: { counts: Counts, outsiders: string }): LivenessNote | undefined {
  const platform = job.platforms.find((p) => p.selector === selector)
  if (platform === undefined) throw new InvalidInputError(`job ${job.id} has no platform ${selector}`)
  if (!isOpen(job, platform)) return undefined
  const counts = counting?.counts ?? everyone
  const offering = members.filter((m) => canBuild(m, platform))
  const matching = offering.filter((m) => counts(m.author))
  if (matching.length === 0) {
    const others = offering.length
    if (others > 0) {
      return { verdict: 'unmatched', reason: `unmatched: no live node whose results count offers ${selector} (${others} ${counting?.outsiders ?? 'others'} ${others === 1 ? 'does' : 'do'})` }
    }
    if (platform.environment === undefined) return { verdict: 'unmatched', reason: `unmatched: no live node offers ${selector}` }
    const labelled = members.filter((m) => counts(m.author) && offersAll(m.platforms, platform.labels)).length
    const otherLabels = platform.labels.filter((label) => label !== platform.environment)
    return {
      verdict: 'unmatched',
      reason: `unmatched: no live node offers the environment ${platform.environment}${otherLabels.length > 0 ? ` on ${otherLabels.join('+')}` : ''}` +
        (labelled > 0 ? ` (${labelled} offer${labelled > 1 ? '' : 's'} the labels ${selector} without having the environment ready)` : '')
    }
  }
  const live = new Map(members.filter((m) => counts(m.author)).map((m) => [m.author, m]))
  const state = slotState(job, platform, now, live, counts)
  if (state.missing <= 0) return undefined
  const fresh = matching.filter((m) => !state.involved.has(m.author))
  const admitting = fresh.filter((m) => policyRefusals(m, job).length === 0)
  if (admitting.length > 0) {
    if (admitting.every((m) => m.free <= 0)) return { verdict: 'pending', reason: `queued: all ${admitting.length} matching node${admitting.length > 1 ? 's are' : ' is'} busy` }
    return undefined
  }
  const reasons = new Set<string>()
  let policyOnly = true
  for (const m of fresh) for (const r of policyRefusals(m, job)) reasons.add(r)
  for (const r of platform.results) {
    if (r.status !== 'refused' || !state.refused.has(r.builder) || !live.has(r.builder)) continue
    const reason = r.reason ?? 'refused'
    // A node's admission policy says "refused by policy: …"; a builder that could not get the source, or prepare the environment, says so.
    if (reason.startsWith(SOURCE_REFUSAL_PREFIX) || reason.startsWith(ENVIRONMENT_REFUSAL_PREFIX)) policyOnly = false
    reasons.add(reason.startsWith(POLICY_REFUSAL_PREFIX) ? reason.slice(POLICY_REFUSAL_PREFIX.length) : reason)
  }
  if (reasons.size > 0) return { verdict: 'unmatched', reason: `${policyOnly ? POLICY_REFUSAL_PREFIX : 'refused: '}${[...reasons].sort().join(', ')}` }
  return {
    verdict: 'unmatched',
    reason: `unmatched: all ${matching.length} live node${matching.length > 1 ? 's' : ''} offering ${selector} already took part; ${state.missing} more result${state.missing > 1 ? 's' : ''} wanted`
  }
}
