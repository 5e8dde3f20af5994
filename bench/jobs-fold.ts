import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { generateNodeKey } from '../src/crypto/keys.js'
import { createSigner, type Signer } from '../src/crypto/sign.js'
import { EntryCodec, type DecodedEntry } from '../src/ledger/entry.js'
import { jobEntryRules } from '../src/jobs/bodies.js'
import { RankCache, rank } from '../src/jobs/rendezvous.js'
import { planClaims, type Member } from '../src/jobs/scheduler.js'
import { foldAll } from '../src/jobs/state.js'
import type { JobView } from '../src/jobs/view.js'
import { round } from './stats.js'

/**
 * The fold and the claiming plan at the scale of a busy mesh: `jobs` jobs,
 * each with 3 claims and 3 results. Baselines: decoding the same entry lines
 * (no signature check) for the fold, and ranking every slot by rendezvous
 * alone for the plan.
 */
export default async function benchJobsFold (options: { jobs?: number, members?: number, openSlots?: number } = {}): Promise<Record<string, unknown>> {
  const jobCount = options.jobs ?? 2000
  const memberCount = options.members ?? 50
  const codec = new EntryCodec(jobEntryRules)
  const signers: Signer[] = Array.from({ length: 6 }, () => createSigner(generateNodeKey()))
  const chains = new Map<Signer, { seq: number, prev: string | null }>()
  let clock = 0
  const write = (signer: Signer, type: string, body: Record<string, unknown>): DecodedEntry => {
    const chain = chains.get(signer) ?? { seq: 0, prev: null }
    const made = codec.create(signer, { seq: chain.seq, prev: chain.prev, clock: ++clock, time: 1_700_000_000_000 + clock, type, body })
    chains.set(signer, { seq: chain.seq + 1, prev: made.id })
    return made
  }
  const sha = (text: string): string => createHash('sha256').update(text).digest('hex')
  const entries: DecodedEntry[] = []
  for (let i = 0; i < jobCount; i++) {
    const job = write(signers[i % 2]!, 'job', {
      name: `job ${i}`, source: sha(`src ${i}`), sourceSize: 1000, steps: [{ name: 'build', run: 'make' }],
      platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 3 }], artifacts: ['dist/*'], independent: [],
      timeout: 600, limits: {}, network: false, root: false
    })
    entries.push(job)
    for (const builder of signers.slice(2, 5)) {
      entries.push(write(builder, 'claim', { job: job.id, platform: 'linux-x64', lease: 1_800_000_000_000 }))
      entries.push(write(builder, 'result', {
        job: job.id, platform: 'linux-x64', status: 'pass', steps: [{ name: 'build', exit: 0, ms: 1000 }], log: sha('log'), logSize: 3,
        artifacts: [{ path: 'dist/a.whl', sha256: sha(`a ${i}`), size: 10 }], env: { os: 'linux', kernel: '6.1', arch: 'x64', sandbox: 'bubblewrap 0.8.0', tools: {} },
        start: 1, end: 2
      }))
    }
  }
  const lines = entries.map((e) => e.line)

  let start = performance.now()
  for (const line of lines) codec.decode(line, { verify: false })
  const decodeMs = performance.now() - start
  start = performance.now()
  const views = foldAll(entries, { quorum: 2 })
  const foldMs = performance.now() - start

  // The plan over open jobs: fold jobs without results so every slot is open.
  const open = views.map((v) => ({ ...v, platforms: v.platforms.map((p) => ({ ...p, verdict: 'pending' as const, results: [], claims: [] })) }))
  const members: Member[] = Array.from({ length: memberCount }, (_, i) => ({
    author: sha(`member ${i}`), platforms: ['linux-x64'], slots: 4, free: 2, running: [], accepts: { network: false, root: false }, lastSeen: 0
  }))
  start = performance.now()
  for (const v of open) for (const p of v.platforms) rank(v.id, p.selector, members.map((m) => m.author))
  const rankMs = performance.now() - start
  start = performance.now()
  const plan = planClaims({ now: 0, self: { author: members[0]!.author, platforms: ['linux-x64'], free: 2, admit: () => ({ ok: true }) }, members, jobs: open, leaseMs: 15_000 })
  const planMs = performance.now() - start
  // Worst case: a node that is never designated (it offers another platform) still plans every slot.
  start = performance.now()
  planClaims({ now: 0, self: { author: sha('outsider'), platforms: ['linux-arm64'], free: 2, admit: () => ({ ok: true }) }, members, jobs: open, leaseMs: 15_000 })
  const worstMs = performance.now() - start

  const mesh = meshPlans(open.slice(0, options.openSlots ?? 20), members)

  return {
    entries: entries.length,
    jobs: jobCount,
    members: memberCount,
    fold: { ms: round(foldMs, 2), baselineDecodeMs: round(decodeMs, 2), ratio: round(foldMs / decodeMs, 2) },
    plan: { ms: round(planMs, 2), baselineRankMs: round(rankMs, 2), ratio: round(planMs / rankMs, 2), claims: plan.claims.length },
    planNeverDesignated: { ms: round(worstMs, 2), baselineRankMs: round(rankMs, 2), ratio: round(worstMs / rankMs, 2) },
    meshPlans: mesh
  }
}

/**
 * What one entry costs the mesh in planning while `open` slots wait (each
 * wants 3 replicas) and every member is free: each member plans once, as
 * itself (the service plans on every entry). With the ranking cache each
 * member keeps (RankCache, warm after its first plan) against ranking afresh
 * every time. The 50-node cluster run of 2026-12-06 had ~20 open slots.
 */
function meshPlans (open: JobView[], members: Member[]): Record<string, unknown> {
  const planAll = (caches: RankCache[] | undefined): number => {
    const started = performance.now()
    members.forEach((m, i) => {
      planClaims({ now: 0, self: { author: m.author, platforms: ['linux-x64'], free: 1, admit: () => ({ ok: true }) }, members, jobs: open, leaseMs: 15_000, ...(caches !== undefined ? { ranking: caches[i]! } : {}) })
    })
    return performance.now() - started
  }
  const caches = members.map(() => new RankCache())
  const fresh: number[] = []
  const cached: number[] = []
  planAll(caches)
  for (let round = 0; round < 20; round++) {
    fresh.push(planAll(undefined))
    cached.push(planAll(caches))
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  return {
    openSlots: open.length,
    members: members.length,
    perPlanMs: round(median(fresh) / members.length, 3),
    perPlanCachedMs: round(median(cached) / members.length, 3),
    meshMsPerEntry: round(median(fresh), 1),
    meshMsPerEntryCached: round(median(cached), 1),
    ratio: round(median(cached) / median(fresh), 2)
  }
}

