import { describe, expect, it } from 'vitest'
import { CLAIM_ESCALATE_MS, CLAIM_LEASE_MS, CLAIM_OVERRUN_MS } from '../../src/jobs/constants.js'
import { RankCache, rank } from '../../src/jobs/rendezvous.js'
import { decideClaims, decideRefusals, explainUnmatched, fairShareOrder, planClaims, slotState, type Admission, type Member } from '../../src/jobs/scheduler.js'
import { foldJob, withLiveness } from '../../src/jobs/state.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import type { JobView } from '../../src/jobs/view.js'
import { World, platforms, type Author } from './helpers.js'

const NOW = 1_800_000_000_000

function member (key: string, fields: Partial<Member> = {}): Member {
  return { author: key, platforms: ['linux-x64'], slots: 2, free: 2, running: [], accepts: { network: false, root: false }, lastSeen: NOW, ...fields }
}

function decide (self: string, members: Member[], jobs: JobView[], options: { now?: number, admit?: (job: JobView) => Admission } = {}) {
  const me = members.find((m) => m.author === self)!
  const input = {
    now: options.now ?? NOW,
    self: { author: self, platforms: me.platforms, free: me.free, admit: options.admit ?? (() => ({ ok: true as const })) },
    members,
    jobs,
    leaseMs: CLAIM_LEASE_MS
  }
  const decided = { claims: decideClaims(input), refusals: decideRefusals(input) }
  // The service plans with a ranking cache kept across plans (and across these tests): it decides alike.
  expect(planClaims({ ...input, ranking })).toEqual(decided)
  return decided
}

/** One ranking cache for every plan of this file, as a node keeps one across all its plans. */
const ranking = new RankCache()

/** Which members claim something, when each decides alone from the same inputs. */
function claimants (members: Member[], jobs: JobView[], now = NOW): string[] {
  return members.filter((m) => decide(m.author, members, jobs, { now }).claims.length > 0).map((m) => m.author)
}

/** A world whose entries are written just before NOW, as in a live mesh. */
function mesh (count: number) {
  const world = new World()
  world.time = NOW - 10_000
  const submitter = world.author()
  const nodes: Author[] = Array.from({ length: count }, () => world.author())
  return { world, submitter, nodes }
}

function view (job: DecodedEntry, related: DecodedEntry[] = []): JobView {
  return foldJob(job, related)
}

describe('claiming without a master', () => {
  it('the designated nodes claim, the others do not', () => {
    const { submitter, nodes } = mesh(4)
    const job = submitter.job()
    const members = nodes.map((n) => member(n.key))
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    expect(claimants(members, [view(job)]).sort()).toEqual(ranked.slice(0, 2).sort())
    const top = decide(ranked[0]!, members, [view(job)]).claims
    expect(top).toEqual([{ job: job.id, platform: 'linux-x64', rank: 0, lease: NOW + CLAIM_LEASE_MS, reason: 'ranked 1 of 4 eligible for linux-x64, 2 replicas missing' }])
    expect(decide(ranked[2]!, members, [view(job)]).claims).toEqual([])
  })

  it('a busy designated node is passed over: the next free one claims', () => {
    const { submitter, nodes } = mesh(4)
    const job = submitter.job()
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const members = nodes.map((n) => member(n.key, { free: n.key === ranked[0] ? 0 : 1 }))
    expect(claimants(members, [view(job)]).sort()).toEqual([ranked[1]!, ranked[2]!].sort())
    expect(decide(ranked[2]!, members, [view(job)]).claims[0]!.reason).toBe(`ranked 3 of 4 eligible for linux-x64, 2 replicas missing; passed over busy ${ranked[0]!.slice(0, 8)}`)
  })

  it('a claim holds its slot while its lease runs; once it passes and the claimant is silent, the next node claims', () => {
    const { submitter, nodes } = mesh(3)
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const first = nodes.find((n) => n.key === ranked[0])!
    const claim = first.claim(job, 'linux-x64', NOW + CLAIM_LEASE_MS)
    const everyone = nodes.map((n) => member(n.key))
    expect(claimants(everyone, [view(job, [claim])], NOW + 1000)).toEqual([])
    const silent = everyone.filter((m) => m.author !== first.key)
    expect(claimants(silent, [view(job, [claim])], NOW + 1000)).toEqual([])
    expect(claimants(silent, [view(job, [claim])], NOW + CLAIM_LEASE_MS + 1)).toEqual([ranked[1]])
  })

  it('a lease that passed holds while the claimant is alive and lists the job as running', () => {
    const { submitter, nodes } = mesh(3)
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const first = nodes.find((n) => n.key === ranked[0])!
    const claim = first.claim(job, 'linux-x64', NOW)
    const later = NOW + 5 * 60_000
    const running = nodes.map((n) => member(n.key, n === first ? { running: [`${job.id}/linux-x64`], free: 1 } : {}))
    expect(claimants(running, [view(job, [claim])], later)).toEqual([])
    // Alive but no longer running it (restarted, lost the run): the slot goes on.
    const restarted = nodes.map((n) => member(n.key))
    expect(claimants(restarted, [view(job, [claim])], NOW + 1000)).toEqual([ranked[1]])
    // A lone node whose own claim lapsed (it restarted) takes the slot again.
    const alone = [member(first.key)]
    expect(claimants(alone, [view(job, [claim])], NOW + 1000)).toEqual([first.key])
    // Running it far past the job's own timeout: stuck, the slot goes on.
    const stuck = NOW + (job.entry.body.timeout as number) * 1000 + CLAIM_OVERRUN_MS + 1
    expect(claimants(running, [view(job, [claim])], stuck)).toEqual([ranked[1]])
  })

  it('a slot left unclaimed by a live, free designated node designates one more node after a while', () => {
    const { submitter, nodes } = mesh(4)
    const job = submitter.job()
    const members = nodes.map((n) => member(n.key))
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const since = job.entry.time
    expect(claimants(members, [view(job)], since + CLAIM_ESCALATE_MS - 1).sort()).toEqual(ranked.slice(0, 2).sort())
    expect(claimants(members, [view(job)], since + CLAIM_ESCALATE_MS).sort()).toEqual(ranked.slice(0, 3).sort())
    expect(decide(ranked[2]!, members, [view(job)], { now: since + CLAIM_ESCALATE_MS }).claims[0]!.reason).toBe('ranked 3 of 4 eligible for linux-x64, 2 replicas missing; unclaimed for 30 s')
    // Never more than twice the missing replicas.
    expect(claimants(members, [view(job)], since + 100 * CLAIM_ESCALATE_MS)).toHaveLength(4)
    const oneMissing = view(job, [nodes[0]!.result(job)])
    expect(claimants(members, [oneMissing], since + 100 * CLAIM_ESCALATE_MS)).toHaveLength(2)
  })

  it('does not escalate past a designated node that keeps claiming and delivering elsewhere: it works through a queue', () => {
    const { submitter, nodes } = mesh(4)
    const job = submitter.job({ platforms: platforms(['linux-x64', 1]) })
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const since = job.entry.time
    const late = since + 3 * CLAIM_ESCALATE_MS
    const quiet = nodes.map((n) => member(n.key))
    expect(claimants(quiet, [view(job)], late).sort()).toEqual(ranked.slice(0, 2).sort())
    // The first choice wrote a result elsewhere a second ago: only it is designated.
    const working = nodes.map((n) => member(n.key, n.key === ranked[0] ? { lastActive: late - 1000 } : {}))
    expect(claimants(working, [view(job)], late)).toEqual([ranked[0]])
    // Silent for a whole period since its last entry: one more node is designated.
    expect(claimants(working, [view(job)], late - 1000 + CLAIM_ESCALATE_MS).sort()).toEqual(ranked.slice(0, 2).sort())
  })

  it('when more nodes claim at once than places are left, the earliest claims hold and the later claimants yield', () => {
    const { submitter, nodes } = mesh(4)
    const job = submitter.job({ platforms: platforms(['linux-x64', 2]) })
    // Three claims for two places: the views of three nodes differed for a moment.
    const claims = [nodes[2]!.claim(job, 'linux-x64', NOW + CLAIM_LEASE_MS), nodes[0]!.claim(job, 'linux-x64', NOW + CLAIM_LEASE_MS), nodes[1]!.claim(job, 'linux-x64', NOW + CLAIM_LEASE_MS)]
    const members = nodes.map((n) => member(n.key))
    const live = new Map(members.map((m) => [m.author, m]))
    const crowded = view(job, claims)
    const state = slotState(crowded, crowded.platforms[0]!, NOW, live)
    expect(state.holding).toEqual([nodes[2]!.key, nodes[0]!.key].sort())
    expect(state.yielded).toEqual([nodes[1]!.key])
    expect(state.missing).toBe(0)
    // The yielded claimant is not counted busy with it, and nobody else is designated.
    expect(claimants(members, [crowded])).toEqual([])
    // A result fills a place: the places left shrink, and the later of the remaining claims yields.
    const delivered = view(job, [...claims, nodes[3]!.result(job)])
    const after = slotState(delivered, delivered.platforms[0]!, NOW, live)
    expect(after.holding).toEqual([nodes[2]!.key])
    expect(after.yielded).toEqual([nodes[0]!.key, nodes[1]!.key].sort())
  })

  it('results fill replicas; a builder that delivered is never designated again', () => {
    const { submitter, nodes } = mesh(3)
    const job = submitter.job()
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const top = nodes.find((n) => n.key === ranked[0])!
    const members = nodes.map((n) => member(n.key))
    const withOne = view(job, [top.result(job)])
    expect(claimants(members, [withOne])).toEqual([ranked[1]])
    expect(decide(ranked[1]!, members, [withOne]).claims[0]!.reason).toBe('ranked 1 of 2 eligible for linux-x64, 1 replica missing')
  })

  it('a node whose heartbeat says it runs the slot holds a place before its claim arrives: nobody passes it over as busy', () => {
    // Seen in the demo: A claimed and its heartbeat (free 0, running the slot) reached B and C before
    // the claim did; both passed A over as busy and claimed, three claims for two replicas.
    const { submitter, nodes } = mesh(3)
    const job = submitter.job()
    const ranked = rank(job.id, 'linux-x64', nodes.map((n) => n.key))
    const key = `${job.id}/linux-x64`
    const members = nodes.map((n) => n.key === ranked[1] ? member(n.key, { slots: 1, free: 0, running: [key] }) : member(n.key, { slots: 1, free: 1 }))
    expect(claimants(members, [view(job)])).toEqual([ranked[0]])
    expect(decide(ranked[0]!, members, [view(job)]).claims[0]!.reason).toBe('ranked 1 of 2 eligible for linux-x64, 1 replica missing')
  })

  it('a node whose quorum is below the replica count still builds the replicas it decided without', () => {
    // Quorum 2 of 3: two agreeing results verify the platform for this reader, but the submitter
    // asked for three and readers on the default quorum (3) still wait for the third.
    const { submitter, nodes } = mesh(3)
    const job = submitter.job({ platforms: platforms(['linux-x64', 3]) })
    const [first, second, third] = nodes as [Author, Author, Author]
    const early = foldJob(job, [first.result(job), second.result(job)], { quorum: 2 })
    expect(early.platforms[0]!.verdict).toBe('verified')
    const members = nodes.map((n) => member(n.key))
    expect(claimants(members, [early])).toEqual([third.key])
    const full = foldJob(job, [first.result(job), second.result(job), third.result(job)], { quorum: 2 })
    expect(claimants(members, [full])).toEqual([])
  })

  it('never claims what its platform labels or policy do not fit', () => {
    const { submitter, nodes } = mesh(1)
    const self = nodes[0]!.key
    const arm = submitter.job({ platforms: platforms(['linux-arm64', 2]) })
    expect(decide(self, [member(self)], [view(arm)]).claims).toEqual([])
    const both = submitter.job({ platforms: platforms(['debian-12+linux-x64', 2]) })
    expect(decide(self, [member(self)], [view(both)]).claims).toEqual([])
    expect(decide(self, [member(self, { platforms: ['linux-x64', 'debian-12'] })], [view(both)]).claims).toHaveLength(1)
    const online = submitter.job({ network: true })
    expect(decide(self, [member(self)], [view(online)])).toEqual({ claims: [], refusals: [] })
    // Public flags accept, the private policy does not: refuse publicly so the next node takes it.
    const open = { accepts: { network: true, root: false } }
    const refused = decide(self, [member(self, open)], [view(online)], { admit: () => ({ ok: false, reason: 'network jobs only from trusted submitters' }) })
    expect(refused).toEqual({ claims: [], refusals: [{ job: online.id, platform: 'linux-x64', reason: 'network jobs only from trusted submitters' }] })
  })

  it('never decides more claims than it has free slots, and skips cancelled or decided platforms', () => {
    const { submitter, nodes } = mesh(2)
    const self = nodes[0]!.key
    const jobs = Array.from({ length: 5 }, (_, i) => view(submitter.job({ name: `job ${i}`, platforms: platforms(['linux-x64', 1]) })))
    expect(decide(self, [member(self, { free: 3 })], jobs).claims).toHaveLength(3)
    expect(decide(self, [member(self, { free: 0 })], jobs).claims).toHaveLength(0)

    const cancelledJob = submitter.job()
    const cancelled = view(cancelledJob, [submitter.cancel(cancelledJob)])
    const doneJob = submitter.job()
    const done = view(doneJob, [nodes[1]!.result(doneJob), submitter.result(doneJob)])
    expect(done.platforms[0]!.verdict).toBe('verified')
    expect(decide(self, [member(self, { free: 4 })], [cancelled, done]).claims).toEqual([])
  })

  it('shares slots fairly between submitters: round-robin, then oldest first', () => {
    const world = new World()
    world.time = NOW - 10_000
    const [busy, quiet, node] = [world.author(), world.author(), world.author()]
    const many = Array.from({ length: 5 }, (_, i) => view(busy.job({ name: `busy ${i}`, platforms: platforms(['linux-x64', 1]) })))
    const one = view(quiet.job({ name: 'quiet', platforms: platforms(['linux-x64', 1]) }))
    const claims = decide(node.key, [member(node.key, { free: 2 })], [...many, one]).claims
    expect(claims.map((c) => c.job)).toEqual([many[0]!.id, one.id])
    expect(fairShareOrder([one, ...many].reverse()).map((s) => s.job.name)).toEqual(['busy 0', 'quiet', 'busy 1', 'busy 2', 'busy 3', 'busy 4'])
  })

  it('nodes deciding alone from the same inputs never designate more than a node has free', () => {
    const { submitter, nodes } = mesh(3)
    const jobs = Array.from({ length: 6 }, (_, i) => view(submitter.job({ name: `job ${i}`, platforms: platforms(['linux-x64', 1]) })))
    const members = nodes.map((n) => member(n.key, { free: 1 }))
    const all = members.flatMap((m) => decide(m.author, members, jobs).claims.map((c) => ({ node: m.author, job: c.job })))
    expect(all).toHaveLength(3)
    expect(new Set(all.map((c) => c.node)).size).toBe(3)
    expect(new Set(all.map((c) => c.job)).size).toBe(3)
  })
})

describe('explaining a job nobody takes', () => {
  it('no live node offers the platform', () => {
    const { submitter, nodes } = mesh(2)
    const job = view(submitter.job({ platforms: platforms(['linux-x64', 2], ['linux-arm64', 2]) }))
    const members = nodes.map((n) => member(n.key))
    expect(explainUnmatched(job, 'linux-arm64', members, NOW)).toEqual({ verdict: 'unmatched', reason: 'unmatched: no live node offers linux-arm64' })
    expect(explainUnmatched(job, 'linux-x64', members, NOW)).toBeUndefined()
    const live = withLiveness(job, (p) => explainUnmatched(job, p.selector, members, NOW))
    expect(live.platforms.map((p) => p.verdict)).toEqual(['pending', 'unmatched'])
    expect(live.verdict).toBe('unmatched')
  })

  it('every matching node refuses by policy', () => {
    const { submitter, nodes } = mesh(2)
    const job = view(submitter.job({ network: true, root: true }))
    const members = [member(nodes[0]!.key), member(nodes[1]!.key, { accepts: { network: true, root: false } })]
    expect(explainUnmatched(job, 'linux-x64', members, NOW)).toEqual({ verdict: 'unmatched', reason: 'refused by policy: network, root' })
    const onlyNetwork = view(submitter.job({ network: true }))
    expect(explainUnmatched(onlyNetwork, 'linux-x64', [member(nodes[0]!.key)], NOW)).toEqual({ verdict: 'unmatched', reason: 'refused by policy: network' })
  })

  it('a refused result counts as a refusal with its reason', () => {
    const { submitter, nodes } = mesh(1)
    const job = submitter.job()
    const refusal = nodes[0]!.result(job, { status: 'refused', reason: 'memory limit above policy', steps: [], artifacts: [], log: null, logSize: 0 })
    expect(explainUnmatched(view(job, [refusal]), 'linux-x64', [member(nodes[0]!.key)], NOW)).toEqual({ verdict: 'unmatched', reason: 'refused by policy: memory limit above policy' })
    // A policy's own reason is not prefixed twice.
    const again = submitter.job()
    const prefixed = nodes[0]!.result(again, { status: 'refused', reason: 'refused by policy: root', steps: [], artifacts: [], log: null, logSize: 0 })
    expect(explainUnmatched(view(again, [prefixed]), 'linux-x64', [member(nodes[0]!.key)], NOW)?.reason).toBe('refused by policy: root')
  })

  it('a builder that could not get the source is said to have refused for that, not by policy', () => {
    const { submitter, nodes } = mesh(1)
    const job = submitter.job()
    const lost = nodes[0]!.result(job, { status: 'refused', reason: 'could not get the source 0123456789ab…: no peer had it', steps: [], artifacts: [], log: null, logSize: 0 })
    expect(explainUnmatched(view(job, [lost]), 'linux-x64', [member(nodes[0]!.key)], NOW)).toEqual({ verdict: 'unmatched', reason: 'refused: could not get the source 0123456789ab…: no peer had it' })
  })

  it('all matching nodes are busy: queued, still pending', () => {
    const { submitter, nodes } = mesh(3)
    const job = view(submitter.job())
    const members = nodes.map((n) => member(n.key, { free: 0 }))
    expect(explainUnmatched(job, 'linux-x64', members, NOW)).toEqual({ verdict: 'pending', reason: 'queued: all 3 matching nodes are busy' })
    expect(withLiveness(job, (p) => explainUnmatched(job, p.selector, members, NOW)).verdict).toBe('pending')
  })

  it('more replicas wanted than live matching nodes', () => {
    const { submitter, nodes } = mesh(1)
    const job = submitter.job()
    const done = view(job, [nodes[0]!.result(job)])
    expect(explainUnmatched(done, 'linux-x64', [member(nodes[0]!.key)], NOW)).toEqual({ verdict: 'unmatched', reason: 'unmatched: all 1 live node offering linux-x64 already took part; 1 more result wanted' })
  })

  it('says nothing while claims hold the slot', () => {
    const { submitter, nodes } = mesh(2)
    const job = submitter.job()
    const claims = [nodes[0]!.claim(job, 'linux-x64', NOW + 5000), nodes[1]!.claim(job, 'linux-x64', NOW + 5000)]
    expect(explainUnmatched(view(job, claims), 'linux-x64', nodes.map((n) => member(n.key, { free: 0 })), NOW)).toBeUndefined()
  })
})
