import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packDirectory } from '../src/archive/index.js'
import { generateNodeKey } from '../src/crypto/keys.js'
import { createSigner } from '../src/crypto/sign.js'
import { CLAIM_LEASE_MS, jobBodyFromSpec, jobEntryRules, JobService, planClaims, validateJobSpec, type JobSpec, type JobView, type Member } from '../src/jobs/index.js'
import { EntryCodec } from '../src/ledger/entry.js'
import { LedgerStore } from '../src/ledger/index.js'
import { createExecutor, DEFAULT_LIMITS, DEFAULT_POLICY, type Executor } from '../src/sandbox/index.js'
import { buildNodeConfig } from '../src/node/config.js'
import { startNode, type RunningNode } from '../src/node/daemon.js'
import { foundMeshFor } from '../src/node/home/found-mesh.js'
import { waitFor } from '../src/util/wait.js'
import { round, spread, type Spread } from './stats.js'

/**
 * Submit → verified for trivial jobs on a small mesh, beside the parts it is
 * made of, measured in the same run:
 * - latency: one job at a time (one step `true`, no artifacts), p50/p95;
 * - burst: N jobs submitted at once, jobs per second until all are verified;
 * each with 1 and with 2 replicas; baselines: the sandbox alone running the
 * same job (executor.run), and a ledger append on one node + gossip to
 * another + an append there + gossip back (a round trip of two signed,
 * fsynced entries).
 *
 * The nodes run in this process (startNode ×3, one shared executor, as
 * `demo` does): real libp2p over loopback, LevelDB, bubblewrap; one event
 * loop for all three, so the figures include their competing for it.
 */
export interface BenchJobsOptions {
  nodes?: number
  /** Jobs submitted one after another per latency measurement. */
  sequential?: number
  /** Jobs per burst. */
  burst?: number
  /** Replica counts to measure. */
  replicas?: number[]
}

const SPEC = validateJobSpec({ name: 'trivial', platforms: ['bench-x'], steps: [{ name: 'ok', run: 'true' }], timeout: 60 })

export async function benchJobs (options: BenchJobsOptions = {}): Promise<Record<string, unknown>> {
  const count = options.nodes ?? 3
  const sequential = options.sequential ?? 30
  const burst = options.burst ?? 100
  const replicaCounts = options.replicas ?? [1, 2]
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-jobs-'))
  const executor = await createExecutor('bubblewrap')
  const nodes: RunningNode[] = []
  try {
    // The nodes found their own mesh (as the demo does): only members' claims and results count, the default.
    const meshFile = join(scratch, 'mesh.json')
    await foundMeshFor(Array.from({ length: count }, (_, i) => join(scratch, `node${i}`)), meshFile, { name: 'bench-jobs' })
    for (let i = 0; i < count; i++) {
      const config = buildNodeConfig({
        home: join(scratch, `node${i}`),
        mesh: meshFile,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: i === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
        mdns: false,
        platform: ['bench-x'],
        slots: '1',
        api: '127.0.0.1:0'
      }, {})
      nodes.push(await startNode(config, { executor, writeApiFile: false, warn: () => {} }))
    }
    await waitFor(() => nodes.every((n) => n.presence.size === count - 1), { timeoutMs: 30_000, intervalMs: 20, what: 'the bench nodes to hear each other' })
    const sourceDir = await mkdtemp(join(scratch, 'source-'))
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(sourceDir, 'buildhaus.json'), JSON.stringify(SPEC))
    const packed = await packDirectory(sourceDir)
    const sources = await Promise.all(nodes.map(async (n) => await n.blobs.put(packed.bytes, { pin: true })))

    progress('planning with 1,000 open slots')
    const planning = await planningCost(join(scratch, 'planning'))
    progress('baselines')
    const sandboxMs = await sandboxAlone(executor, packed.bytes, join(scratch, 'work'), sequential)
    const roundTripMs = await ledgerRoundTrip(nodes[0]!, nodes[1]!, sequential)

    const latency: Record<string, unknown> = {}
    const bursts: Record<string, unknown> = {}
    for (const replicas of replicaCounts) {
      progress(`latency, ${replicas} replica(s)`)
      latency[`replicas${replicas}`] = await sequentialLatency(nodes, sources, replicas, sequential)
      progress(`burst, ${replicas} replica(s)`)
      bursts[`replicas${replicas}`] = await burstThroughput(nodes, sources, replicas, burst)
    }
    const one = latency.replicas1 as { submitToVerifiedMs: Spread } | undefined
    const oneBurst = bursts.replicas1 as { jobsPerSecond: number } | undefined
    return {
      what: `trivial jobs (one step \`true\`, no artifacts) on ${count} in-process nodes sharing one bubblewrap executor, 1 slot each`,
      machine: { cpus: (await import('node:os')).cpus().length },
      baseline: {
        sandboxAloneMs: sandboxMs,
        ledgerRoundTripMs: roundTripMs,
        note: 'sandboxAlone: executor.run of the same job with nothing around it; ledgerRoundTrip: append on A → gossip → B appends on receipt → gossip → A (two signed, fsynced entries each way)'
      },
      latency,
      burst: bursts,
      planning,
      ratios: one === undefined ? {} : {
        latencyP50OverSandboxP50: round(one.submitToVerifiedMs.p50 / sandboxMs.p50, 2),
        latencyP50OverRoundTripP50: round(one.submitToVerifiedMs.p50 / roundTripMs.p50, 2)
      },
      goal: {
        latencyP50MsAtMost: 33,
        burstJobsPerSecondAtLeast: 32,
        met: one !== undefined && oneBurst !== undefined && one.submitToVerifiedMs.p50 <= 33 && oneBurst.jobsPerSecond >= 32,
        reference: 'Buildbot 3.7 on this machine: ~330 ms p50, ~3.2 builds/s'
      }
    }
  } finally {
    await Promise.allSettled(nodes.reverse().map(async (n) => { await n.stop() }))
    // Shared by the nodes, so none of them closes it: its spare runs and warm sandboxes go here.
    await executor.close?.()
    await rm(scratch, { recursive: true, force: true })
  }
}

async function sandboxAlone (executor: Executor, source: Buffer, workRoot: string, runs: number): Promise<Spread> {
  const { mkdir } = await import('node:fs/promises')
  await mkdir(workRoot, { recursive: true })
  const samples: number[] = []
  for (let i = 0; i < runs + 3; i++) {
    const started = performance.now()
    const outcome = await executor.run({ source, steps: SPEC.steps, artifacts: [], network: false, root: false, limits: { ...DEFAULT_LIMITS, wallSeconds: 60 }, workRoot })
    await outcome.dispose()
    if (i >= 3) samples.push(performance.now() - started)
    if (outcome.status !== 'pass') throw new Error(`the sandbox baseline did not pass: ${outcome.reason ?? outcome.status}`)
  }
  return spread(samples)
}

/** A → B → A: A appends, B appends on receipt, A times the arrival of B's entry. */
async function ledgerRoundTrip (a: RunningNode, b: RunningNode, runs: number): Promise<Spread> {
  const samples: number[] = []
  const fakeJob = 'f'.repeat(64)
  for (let i = 0; i < runs + 3; i++) {
    const started = performance.now()
    const back = new Promise<void>((resolve) => {
      const onB = (evt: Event): void => {
        const entry = (evt as CustomEvent<{ entry: { author: string, body: { lease?: number } } }>).detail
        if (entry.entry.author !== a.author || entry.entry.body.lease !== i) return
        b.ledger.removeEventListener('entry', onB)
        void b.ledger.append('claim', { job: fakeJob, platform: 'bench-rtt', lease: i })
      }
      const onA = (evt: Event): void => {
        const entry = (evt as CustomEvent<{ entry: { author: string, body: { lease?: number } } }>).detail
        if (entry.entry.author !== b.author || entry.entry.body.lease !== i) return
        a.ledger.removeEventListener('entry', onA)
        resolve()
      }
      b.ledger.addEventListener('entry', onB)
      a.ledger.addEventListener('entry', onA)
    })
    await a.ledger.append('claim', { job: fakeJob, platform: 'bench-rtt', lease: i })
    await back
    if (i >= 3) samples.push(performance.now() - started)
  }
  return spread(samples)
}

/** Resolves when `node` sees the job decided; the time is taken in the event, not by polling. */
function decidedOn (node: RunningNode, id: string): Promise<JobView> {
  return new Promise((resolve) => {
    const check = (): boolean => {
      const view = node.jobs.get(id)
      if (view === undefined || view.verdict === 'pending' || view.verdict === 'unmatched') return false
      node.jobs.removeEventListener('job', onJob)
      resolve(view)
      return true
    }
    const onJob = (evt: Event): void => {
      if ((evt as CustomEvent<{ id: string }>).detail.id === id) check()
    }
    node.jobs.addEventListener('job', onJob)
    check()
  })
}

async function sequentialLatency (nodes: RunningNode[], sources: Array<{ hash: string, size: number }>, replicas: number, jobs: number): Promise<Record<string, unknown>> {
  const total: number[] = []
  const claimDelay: number[] = []
  const runStart: number[] = []
  const run: number[] = []
  const publish: number[] = []
  const observe: number[] = []
  const spec: JobSpec = SPEC
  for (let i = 0; i < jobs + 3; i++) {
    const submitter = nodes[i % nodes.length]!
    const started = Date.now()
    const t0 = performance.now()
    let id = ''
    const submitted = submitter.jobs.submit({ spec, overrides: { replicas }, source: sources[i % nodes.length]! })
    const view = await submitted.then(async (job) => { id = job.id; return await decidedOn(submitter, job.id) })
    const elapsed = performance.now() - t0
    if (view.verdict !== 'verified') throw new Error(`bench job ${id} ended ${view.verdict}: ${view.reason ?? ''}`)
    if (i < 3) continue
    total.push(elapsed)
    const platform = view.platforms[0]!
    // The last result decides; its phases, as the builders' own clocks wrote them (one machine, one clock).
    const last = [...platform.results].sort((a, b) => a.time - b.time).at(-1)!
    const claim = platform.claims.find((c) => c.builder === last.builder)!
    claimDelay.push(claim.time - view.time)
    runStart.push(last.start - claim.time)
    run.push(last.end - last.start)
    publish.push(last.time - last.end)
    observe.push(started + elapsed - last.time)
  }
  return {
    jobs,
    submitToVerifiedMs: spread(total),
    phasesMs: {
      submitToClaim: spread(claimDelay),
      claimToSandboxStart: spread(runStart),
      sandboxRun: spread(run),
      sandboxEndToResult: spread(publish),
      resultToVerdictAtSubmitter: spread(observe)
    },
    note: 'phases from entry times (ms resolution) of the result that decided; submitter rotates over the nodes'
  }
}

async function burstThroughput (nodes: RunningNode[], sources: Array<{ hash: string, size: number }>, replicas: number, jobs: number): Promise<Record<string, unknown>> {
  const started = performance.now()
  const submitted: JobView[] = []
  for (let i = 0; i < jobs; i++) {
    submitted.push(await nodes[i % nodes.length]!.jobs.submit({ spec: SPEC, overrides: { replicas }, source: sources[i % nodes.length]! }))
  }
  const submitMs = performance.now() - started
  const views = await Promise.all(submitted.map(async (job, i) => await decidedOn(nodes[i % nodes.length]!, job.id)))
  const elapsed = performance.now() - started
  const results = views.reduce((n, v) => n + v.platforms[0]!.results.length, 0)
  const perNode = nodes.map((n) => views.reduce((k, v) => k + v.platforms[0]!.results.filter((r) => r.builder === n.author).length, 0))
  return {
    jobs,
    submitMs: round(submitMs),
    allVerifiedMs: round(elapsed),
    jobsPerSecond: round(jobs / (elapsed / 1000)),
    runs: results,
    duplicateRuns: results - jobs * replicas,
    perNode
  }
}

/**
 * One JobService over a real ledger holding `open` unclaimed jobs (one slot
 * each) and four other members, all busy: each plan designates this node for
 * one slot after walking the whole queue (the costly path). The executor
 * fails every run at once, so each claim turns into a result and the next
 * plan sees one open slot fewer. Baseline: planClaims alone over the same
 * views and members, which the service's plan wraps.
 */
export async function planningCost (dir: string, open = 1000, plans = 50): Promise<Record<string, unknown>> {
  const ledger = await LedgerStore.open({ path: join(dir, 'ledger'), codec: new EntryCodec(jobEntryRules), signer: createSigner(generateNodeKey()) })
  ledger.allowAppend()
  const self = ledger.author!
  const source = { hash: 'ab'.repeat(32), size: 1024 }
  const body = jobBodyFromSpec(SPEC, { platforms: ['bench-p'], replicas: 1 }, source)
  await Promise.all(Array.from({ length: open }, async () => await ledger.append('job', body)))
  const others: Member[] = Array.from({ length: 4 }, (_, i) => ({
    author: `${i}`.repeat(64),
    platforms: ['bench-p'],
    slots: 1,
    free: 0,
    running: [`${'e'.repeat(63)}${i}/bench-p`],
    accepts: { network: false, root: false },
    lastSeen: Date.now()
  }))
  const env = { os: 'linux', kernel: 'bench', arch: 'x64', sandbox: 'bubblewrap' as const, tools: {} }
  const failing: Executor = { kind: 'bubblewrap', run: async () => { throw new Error('bench: no sandbox') }, fingerprint: async () => env }
  const noBlobs = async (): Promise<never> => { throw new Error('bench: no blobs') }
  const service = new JobService({
    self: { author: self, platforms: ['bench-p'], slots: 1 },
    ledger,
    blobs: { has: async () => true, put: noBlobs, putFile: noBlobs, readBytes: async () => Buffer.alloc(0), path: () => '', pin: () => {}, unpin: () => {} },
    fetcher: { fetch: noBlobs },
    membership: { members: () => others.map((m) => ({ ...m, lastSeen: Date.now() })), update: () => {} },
    executor: failing,
    policy: DEFAULT_POLICY,
    // Everyone: the members here are synthetic (no vouches in this log); the bench measures planning, not trust.
    trust: {},
    workRoot: join(dir, 'work'),
    tickMs: 3_600_000
  })
  // Time each of the service's own plans (a private method: the bench wraps it on this instance only).
  const planMs: number[] = []
  const schedulerMs: number[] = []
  const internals = service as unknown as { plan: () => void }
  const plan = internals.plan.bind(service)
  internals.plan = () => {
    if (planMs.length >= plans) return plan()
    const views = service.foldedViews().filter((v) => v.verdict === 'pending')
    let began = performance.now()
    planClaims({ now: Date.now(), self: { author: self, platforms: ['bench-p'], free: 1, admit: () => ({ ok: true }) }, members: others, jobs: views, leaseMs: CLAIM_LEASE_MS })
    schedulerMs.push(performance.now() - began)
    began = performance.now()
    plan()
    planMs.push(performance.now() - began)
  }
  try {
    const started = performance.now()
    await service.start()
    const startMs = performance.now() - started
    // Each plan claims one slot, the run fails at once, its result triggers the next plan.
    await waitFor(() => planMs.length >= plans, { timeoutMs: 60_000, intervalMs: 5, what: `${plans} plans` })
    const planSpread = spread(planMs)
    const scheduler = spread(schedulerMs)
    return {
      openSlots: open,
      members: others.length + 1,
      serviceStartMs: round(startMs),
      plans: planMs.length,
      planMs: planSpread,
      baseline: { planClaimsAloneMs: scheduler },
      ratio: round(planSpread.p50 / scheduler.p50, 2),
      note: 'serviceStart reads and folds every job; a plan: active views, load from the log, planClaims, one claim started; every other member busy, so the plan walks the whole queue'
    }
  } finally {
    await service.stop()
    await ledger.close()
  }
}

function progress (what: string): void {
  if (process.env.BENCH_QUIET === undefined) process.stderr.write(`bench jobs: ${what}…\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchJobs(), null, 2))
  // libp2p sockets and worker threads may outlive the figures.
  process.exit(0)
}
