/**
 * The single entry point of `npm run bench`: runs the benchmark modules one
 * after the other and prints ONE JSON document on stdout (progress on
 * stderr). A module that throws is recorded under `errors` and the run goes
 * on; the exit code is 1 if any module failed.
 *
 *   npm run bench -- [--quick] [--only mesh,jobs] [--json-out FILE]
 */
import { spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { benchAudit } from './audit.js'
import { benchBlobs } from './blobs.js'
import { benchCluster } from './cluster.js'
import { benchDashboard } from './dashboard.js'
import { benchDoor } from './door.js'
import { benchEnvironments } from './environments.js'
import benchJobsFold from './jobs-fold.js'
import { benchJobs } from './jobs.js'
import { benchLedger } from './ledger.js'
import { benchMembership } from './membership.js'
import { benchMesh } from './mesh.js'
import { benchSandbox } from './sandbox.js'
import { benchScale, checkModel } from './scale.js'
import { benchSyncHeads } from './sync-heads.js'
import { benchUser } from './user.js'
import { benchBusy } from './busy.js'
import { benchWatches } from './watches.js'
import { benchWorkloads } from './workloads.js'

interface Module {
  /** The full run: each module's own defaults unless they would push the run past ~20 minutes. */
  full: () => Promise<unknown>
  /** Small sizes: the whole quick run takes a few minutes. */
  quick: () => Promise<unknown>
}

/** In the order they run: cheap, single-process figures first, the many-node runs last. */
const MODULES = {
  sandbox: { full: async () => await benchSandbox(), quick: async () => await benchSandbox({ rounds: 1 }) },
  // The full run makes a Debian environment (a minute or two of both cores); the quick one uses a cached one, if any.
  environments: { full: async () => await benchEnvironments(), quick: async () => await benchEnvironments({ create: false, rounds: 1 }) },
  ledger: { full: async () => await benchLedger(), quick: async () => await benchLedger({ entries: 10_000, appends: 150, concurrentAppends: 1_000 }) },
  door: { full: async () => await benchDoor(), quick: async () => await benchDoor({ entries: 1_000, rounds: 2 }) },
  syncHeads: { full: async () => await benchSyncHeads(), quick: async () => await benchSyncHeads({ chains: [1_000], sessions: 5 }) },
  audit: { full: async () => await benchAudit(), quick: async () => await benchAudit({ entries: 10_000 }) },
  jobs: { full: async () => await benchJobs(), quick: async () => await benchJobs({ sequential: 8, burst: 20 }) },
  jobsFold: { full: async () => await benchJobsFold(), quick: async () => await benchJobsFold({ jobs: 300, members: 20 }) },
  membership: { full: async () => await benchMembership(), quick: async () => await benchMembership({ members: 200, strangerVouches: 2_000, rounds: 2 }) },
  blobs: { full: async () => await benchBlobs(), quick: async () => await benchBlobs({ sizeMb: 8, runs: 1 }) },
  watches: { full: async () => await benchWatches(), quick: async () => await benchWatches({ lines: 50, results: 50 }) },
  dashboard: { full: async () => await benchDashboard(), quick: async () => await benchDashboard({ jobs: 200, loads: 2, requests: 40 }) },
  mesh: { full: async () => await benchMesh(), quick: async () => await benchMesh({ sizes: [5], messages: 10, startRuns: 1, rssProcesses: 2, idleMs: 3_000 }) },
  // What users see (node processes, HTTP, SSE) beside Buildbot 3.7 in the same run; after the in-process jobs figures, its breakdown.
  // A build that wants every core, and what it leaves to the node and the volunteer's own work.
  busy: { full: async () => await benchBusy(), quick: async () => await benchBusy({ requests: 50, rounds: 2 }) },
  user: { full: async () => await benchUser(), quick: async () => await benchUser({ sequential: 8, burst: 20, idlePeers: 10, idleMs: 5_000 }) },
  // Real builds (a C program, a Python wheel, Debian's hello) through the CLI beside the same steps under a plain bwrap.
  // The full run makes missing environments; the quick one builds the C program once in a cached one, if any.
  workloads: { full: async () => await benchWorkloads(), quick: async () => await benchWorkloads({ rounds: 1, only: ['c-program'], create: false }) },
  // 5 minutes per phase (not the module's 10) keeps a struggling 50-node run from pushing the whole run past ~20 minutes.
  cluster: { full: async () => await benchCluster({ phaseTimeoutMs: 5 * 60_000 }), quick: async () => await benchCluster({ nodes: 6, hosts: 2, jobs: 4, phaseTimeoutMs: 120_000 }) },
  // The scale model's inputs (CPU per message, sizes) and its projections; checked against `cluster` when both ran.
  scale: { full: async () => await benchScale(), quick: async () => await benchScale({ idleMs: 5_000, entries: 50, storeEntries: 5_000 }) }
} satisfies Record<string, Module>

type ModuleName = keyof typeof MODULES
const NAMES = Object.keys(MODULES) as ModuleName[]

const USAGE = `usage: npm run bench -- [--quick] [--only ${NAMES.join(',')}] [--json-out FILE]
  --quick        small sizes (the whole run takes a few minutes)
  --only LIST    comma-separated modules to run (default: all, in the order above)
  --json-out F   also write the JSON document to F
  --help         this text`

class BenchUsageError extends Error {
  override name = 'BenchUsageError'
}

interface Args { quick: boolean, only: ModuleName[], jsonOut: string | undefined, help: boolean }

function parse (argv: string[]): Args {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        'json-out': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }))
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    throw new BenchUsageError(`could not read the arguments ${JSON.stringify(argv)}: ${message}; accepted: --quick, --only LIST, --json-out FILE, --help`)
  }
  let only = NAMES
  if (values.only !== undefined) {
    const asked = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '')
    const unknown = asked.filter((s) => !(NAMES as string[]).includes(s))
    if (unknown.length > 0 || asked.length === 0) {
      throw new BenchUsageError(`--only received "${values.only}"${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}; accepted modules: ${NAMES.join(', ')}`)
    }
    // Keep the usual order whatever order they were listed in.
    only = NAMES.filter((name) => asked.includes(name))
  }
  if (values['json-out'] === '') throw new BenchUsageError('--json-out received an empty file name; give the path of a file to write the JSON to')
  return { quick: values.quick, only, jsonOut: values['json-out'], help: values.help }
}

function bubblewrapVersion (): string | null {
  const result = spawnSync('bwrap', ['--version'], { encoding: 'utf8', timeout: 10_000 })
  return result.status === 0 ? result.stdout.trim() : null
}

function machine (): Record<string, unknown> {
  const load = loadavg().map((l) => Math.round(l * 100) / 100)
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGb: Math.round(totalmem() / 1024 ** 3 * 10) / 10,
    kernel: release(),
    node: process.version,
    bubblewrap: bubblewrapVersion(),
    loadavgBeforeStart: { '1m': load[0], '5m': load[1], '15m': load[2] }
  }
}

function say (line: string): void {
  process.stderr.write(`bench: ${line}\n`)
}

async function main (): Promise<number> {
  let args: Args
  try {
    args = parse(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err
    process.stderr.write(`bench: ${err.message}\n${USAGE}\n`)
    return 2
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  // stdout carries only the final JSON: anything a module prints with console.log goes to stderr.
  console.log = (...data: unknown[]) => { console.error(...data) }

  const started = performance.now()
  const document: Record<string, unknown> = { date: new Date().toISOString(), machine: machine(), quick: args.quick }
  const modules: Record<string, unknown> = {}
  const errors: Record<string, string> = {}
  const seconds: Record<string, number> = {}
  for (const name of args.only) {
    say(`${name} …`)
    const began = performance.now()
    try {
      const figures = await (args.quick ? MODULES[name].quick() : MODULES[name].full())
      modules[name] = figures
      // Modules that carry on after a failed phase (cluster) report it in their figures: count it as a failure.
      const reported = (figures as { error?: unknown } | null)?.error
      if (typeof reported === 'string') errors[name] = reported
    } catch (err) {
      errors[name] = err instanceof Error ? err.message : String(err)
    }
    seconds[name] = Math.round((performance.now() - began) / 100) / 10
    say(`${name} ${errors[name] !== undefined ? 'FAILED' : 'done'} … ${seconds[name].toFixed(0)} s${errors[name] !== undefined ? `: ${errors[name]}` : ''}`)
  }
  // The scale model beside the cluster's measured figures of this very run.
  if (modules.scale !== undefined && modules.cluster !== undefined && errors.scale === undefined) {
    document.modelCheck = checkModel(modules.scale as Record<string, unknown>, modules.cluster as Record<string, unknown>)
  }
  Object.assign(document, { modules, errors, moduleSeconds: seconds, totalSeconds: Math.round((performance.now() - started) / 100) / 10 })

  const json = `${JSON.stringify(document, null, 2)}\n`
  if (args.jsonOut !== undefined) {
    await mkdir(dirname(args.jsonOut), { recursive: true })
    await writeFile(args.jsonOut, json)
    say(`wrote ${args.jsonOut}`)
  }
  await new Promise<void>((resolve) => process.stdout.write(json, () => { resolve() }))
  say(`${Object.keys(errors).length === 0 ? 'all modules done' : `${Object.keys(errors).length} module(s) failed: ${Object.keys(errors).join(', ')}`} in ${(document.totalSeconds as number).toFixed(0)} s`)
  return Object.keys(errors).length === 0 ? 0 : 1
}

// libp2p sockets, worker threads and timers can outlive the modules: exit once the JSON is out.
main().then((code) => { process.exit(code) }, (err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
