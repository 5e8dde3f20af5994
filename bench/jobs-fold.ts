import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { generateNodeKey } from '../src/crypto/keys.js'
import { createSigner, type Signer } from '../src/crypto/sign.js'
import { EntryCodec, type DecodedEntry } from '../src/ledger/entry.js'
import { jobEntryRules } from '../src/jobs/bodies.js'
import { rank } from '../src/jobs/rendezvous.js'
import { planClaims, type Member } from '../src/jobs/scheduler.js'
import { foldAll } from '../src/jobs/state.js'
import { round } from './stats.js'

/**
 * The fold and the claiming plan at the scale of a busy mesh: `jobs` jobs,
 * each with 3 claims and 3 results. Baselines: decoding the same entry lines
 * (no signature check) for the fold, and ranking every slot by rendezvous
 * alone for the plan.
 */
export default async function benchJobsFold (options: { jobs?: number, members?: number } = {}): Promise<Record<string, unknown>> {
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

  return {
    entries: entries.length,
    jobs: jobCount,
    members: memberCount,
    fold: { ms: round(foldMs, 2), baselineDecodeMs: round(decodeMs, 2), ratio: round(foldMs / decodeMs, 2) },
    plan: { ms: round(planMs, 2), baselineRankMs: round(rankMs, 2), ratio: round(planMs / rankMs, 2), claims: plan.claims.length },
    planNeverDesignated: { ms: round(worstMs, 2), baselineRankMs: round(rankMs, 2), ratio: round(worstMs / rankMs, 2) }
  }
}

