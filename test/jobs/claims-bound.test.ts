import { describe, expect, it } from 'vitest'
import { CLAIM_LEASE_MS, HEARTBEAT_HOLD_MS, maxClaimHoldMs } from '../../src/jobs/constants.js'
import { rank } from '../../src/jobs/rendezvous.js'
import { decideClaims, explainUnmatched, slotState, wantsBuilders, type Member } from '../../src/jobs/scheduler.js'
import { foldJob } from '../../src/jobs/state.js'
import { countingOf, type TrustPolicy } from '../../src/jobs/trust.js'
import type { JobView } from '../../src/jobs/view.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { EVIL, World, platforms, type Author } from './helpers.js'

/**
 * Claims that cannot be gamed (issue 12, attack 1), in the pure scheduler:
 * only counted builders' claims hold a slot, and a counted one holds it for
 * one bounded lease at most, from its first claim's own time.
 */
const NOW = 1_800_000_000_000
const HOLD = maxClaimHoldMs(600)

function member (key: string, fields: Partial<Member> = {}): Member {
  return { author: key, platforms: ['linux-x64'], slots: 2, free: 2, running: [], accepts: { network: false, root: false }, lastSeen: NOW, ...fields }
}

function setup () {
  const world = new World()
  world.time = NOW - 10_000
  const submitter = world.author()
  const honest: Author[] = [world.author(), world.author(), world.author()]
  const strangers: Author[] = [world.author(), world.author()]
  const policy: TrustPolicy = { trusted: new Set(honest.map((h) => h.key)), basis: 'members' }
  return { world, submitter, honest, strangers, policy }
}

function fold (job: DecodedEntry, related: DecodedEntry[], policy: TrustPolicy): JobView {
  return foldJob(job, related, policy)
}

function designated (self: Author, members: Member[], view: JobView, policy: TrustPolicy, now = NOW): boolean {
  return decideClaims({
    now,
    self: { author: self.key, platforms: ['linux-x64'], free: 2, admit: () => ({ ok: true }) },
    members,
    jobs: [view],
    leaseMs: CLAIM_LEASE_MS,
    counts: countingOf(policy).counts
  }).length > 0
}

describe('claims under membership', () => {
  it('strangers\' squatting claims (clock 0, lease 2^53-1) hold nothing, make nobody yield, and their results fill no replica', () => {
    const { submitter, honest, strangers, policy } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 2]) })
    const squats = strangers.map((s) => s.claim(job, 'linux-x64', Number.MAX_SAFE_INTEGER))
    const honestClaim = honest[0]!.claim(job, 'linux-x64', NOW + CLAIM_LEASE_MS)
    const view = fold(job, [...squats, honestClaim], policy)
    expect(view.platforms[0]!.claims.map((c) => c.trusted)).toEqual([false, false, true])
    // The squatters' heartbeats say they run it too.
    const live = new Map([honest[0]!, ...strangers].map((a) => [a.key, member(a.key, { running: [`${job.id}/linux-x64`] })]))
    const { counts } = countingOf(policy)
    const state = slotState(view, view.platforms[0]!, NOW, live, counts)
    expect(state.holding).toEqual([honest[0]!.key])
    expect(state.yielded).toEqual([])
    expect(state.missing).toBe(1)
    // Their fake results: the platform stays open for members, and counts no stranger as delivered.
    const faked = fold(job, [...squats, honestClaim, ...strangers.map((s) => s.result(job, { artifacts: EVIL }))], policy)
    expect(faked.platforms[0]!.verdict).toBe('pending')
    expect(faked.platforms[0]!.reason).toBe('no members\' results yet (2 agreeing needed); 2 from non-members not counted')
    expect(wantsBuilders(faked, faked.platforms[0]!)).toBe(true)
    expect(slotState(faked, faked.platforms[0]!, NOW, live, counts).delivered.size).toBe(0)
    // Under everyone, the same claims would take both places: today's behaviour, by choice only.
    const open = fold(job, [...squats, honestClaim], {})
    expect(slotState(open, open.platforms[0]!, NOW, live).yielded).toEqual([honest[0]!.key])
  })

  it('a stranger is never designated and a node not counted by its own policy claims nothing', () => {
    const { submitter, honest, strangers, policy } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 2]) })
    const members = [...honest, ...strangers].map((a) => member(a.key))
    const view = fold(job, [], policy)
    for (const s of strangers) expect(designated(s, members, view, policy)).toBe(false)
    const ranked = rank(job.id, 'linux-x64', honest.map((h) => h.key))
    expect(honest.filter((h) => designated(h, members, view, policy)).map((h) => h.key).sort()).toEqual(ranked.slice(0, 2).sort())
    // The liveness note names the outsiders when only they offer a platform.
    const onlyStrangers = strangers.map((s) => member(s.key))
    expect(explainUnmatched(view, 'linux-x64', onlyStrangers, NOW, countingOf(policy))).toEqual({ verdict: 'unmatched', reason: 'unmatched: no live node whose results count offers linux-x64 (2 non-members do)' })
  })

  it('a member gone bad holds a slot for one bounded lease at most: not by its lease, nor by claiming again, nor by heartbeats', () => {
    const { submitter, honest, policy } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    const [bad, good] = honest as [Author, Author, Author]
    const { counts } = countingOf(policy)
    const key = `${job.id}/linux-x64`
    const first = bad.claim(job, 'linux-x64', Number.MAX_SAFE_INTEGER)
    const claimedAt = first.entry.time
    const running = new Map([[bad.key, member(bad.key, { running: [key] })], [good.key, member(good.key)]])
    const silent = new Map([[good.key, member(good.key)]])
    const state = (related: DecodedEntry[], now: number, live: Map<string, Member>) => {
      const view = fold(job, related, policy)
      return slotState(view, view.platforms[0]!, now, live, counts)
    }
    // Within the bound: it holds (its heartbeats say running, or not).
    expect(state([first], claimedAt + HOLD - 1, running).holding).toEqual([bad.key])
    expect(state([first], claimedAt + HOLD - 1, silent).holding).toEqual([bad.key])
    // At the bound: nothing holds, whatever the lease and the heartbeats; the slot is free for the next node.
    expect(state([first], claimedAt + HOLD, running).holding).toEqual([])
    expect(state([first], claimedAt + HOLD, running).lapsed).toEqual(new Set([bad.key]))
    expect(designated(good, [...running.values()], fold(job, [first], policy), policy, claimedAt + HOLD)).toBe(true)
    // Claiming again and again does not extend it: the bound runs from its first claim.
    const again = [first, bad.claim(job, 'linux-x64', Number.MAX_SAFE_INTEGER), bad.claim(job, 'linux-x64', Number.MAX_SAFE_INTEGER)]
    expect(state(again, claimedAt + HOLD, running).holding).toEqual([])
  })

  it('a heartbeat listing a slot with no claim holds a place only shortly after the slot last changed', () => {
    const { submitter, honest, policy } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    const [phantom] = honest as [Author, Author, Author]
    const view = fold(job, [], policy)
    const live = new Map([[phantom.key, member(phantom.key, { running: [`${job.id}/linux-x64`] })]])
    const { counts } = countingOf(policy)
    expect(slotState(view, view.platforms[0]!, job.entry.time + HEARTBEAT_HOLD_MS - 1, live, counts).holding).toEqual([phantom.key])
    expect(slotState(view, view.platforms[0]!, job.entry.time + HEARTBEAT_HOLD_MS, live, counts).holding).toEqual([])
    // A stranger's heartbeat holds nothing at all.
    expect(slotState(view, view.platforms[0]!, job.entry.time, live, () => false).holding).toEqual([])
  })
})
