import { describe, expect, it } from 'vitest'
import { jobBodySchema, resultBodySchema } from '../../src/jobs/bodies.js'
import { CLAIM_LEASE_MS } from '../../src/jobs/constants.js'
import { canBuild, decideClaims, explainUnmatched, type Member } from '../../src/jobs/scheduler.js'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { jobBodyFromSpec, readJobSpec, validateJobSpec } from '../../src/jobs/spec.js'
import { packageRoot } from '../../src/util/package-root.js'
import { foldJob } from '../../src/jobs/state.js'
import { jobBody, resultBody, sha, World, artifact } from './helpers.js'

/** The jobs layer's side of environments: the spec, the bodies, who may claim, and verdicts that name package differences. */

const SOURCE = { hash: sha('source'), size: 10 }
const STEPS = [{ name: 'build', run: 'make' }]

describe('a job spec with environments', () => {
  it('builds each platform once per environment, the environment a label of it', () => {
    const spec = validateJobSpec({ name: 'x', platforms: ['linux-x64'], environment: ['debian-11', 'host', 'debian-13'], steps: STEPS, timeout: 60 })
    const body = jobBodyFromSpec(spec, {}, SOURCE)
    expect(body.platforms).toEqual([
      { selector: 'debian-11+linux-x64', labels: ['debian-11', 'linux-x64'], replicas: 2, environment: 'debian-11' },
      { selector: 'linux-x64', labels: ['linux-x64'], replicas: 2 },
      { selector: 'debian-13+linux-x64', labels: ['debian-13', 'linux-x64'], replicas: 2, environment: 'debian-13' }
    ])
    // One environment as a string; replicas by environment name; packages sorted.
    const one = jobBodyFromSpec(validateJobSpec({ name: 'x', environment: 'debian-12', packages: ['texinfo', 'debhelper'], replicas: { 'debian-12': 3 }, steps: STEPS, timeout: 60 }), { platforms: ['linux-x64'] }, SOURCE)
    expect(one.platforms).toEqual([{ selector: 'debian-12+linux-x64', labels: ['debian-12', 'linux-x64'], replicas: 3, environment: 'debian-12' }])
    expect(one.packages).toEqual(['debhelper', 'texinfo'])
  })

  it('holds for every example a user can submit as it is', async () => {
    const examples = join(packageRoot(), 'examples')
    for (const name of readdirSync(examples)) {
      const spec = await readJobSpec(join(examples, name))
      const body = jobBodyFromSpec(spec, spec.platforms === undefined ? { platforms: ['linux-x64'] } : {}, SOURCE)
      expect(jobBodySchema.safeParse(body).success, name).toBe(true)
    }
    const wheel = await readJobSpec(join(examples, 'python-wheel'))
    expect(jobBodyFromSpec(wheel, { platforms: ['linux-x64'] }, SOURCE).platforms.map((p) => p.selector)).toEqual(['debian-11+linux-x64', 'debian-12+linux-x64', 'debian-13+linux-x64'])
  })

  it('refuses packages without an environment, bad names, and environments given twice', () => {
    expect(() => validateJobSpec({ name: 'x', packages: ['gcc'], steps: STEPS })).toThrow(/packages needs an "environment"/)
    expect(() => validateJobSpec({ name: 'x', environment: 'host', packages: ['gcc'], steps: STEPS })).toThrow(/packages needs an "environment"/)
    expect(() => validateJobSpec({ name: 'x', environment: 'debian-12', packages: ['-o', 'x'], steps: STEPS })).toThrow(/not a Debian package name/)
    expect(() => validateJobSpec({ name: 'x', environment: ['debian-12', 'debian-12'], steps: STEPS })).toThrow(/repeats the environment/)
    expect(() => validateJobSpec({ name: 'x', environment: 'Debian 12', steps: STEPS })).toThrow(/environment/)
  })

  it('has bodies whose environment is one of the platform\'s labels, and packages only with environments everywhere', () => {
    const good = jobBody({ platforms: [{ selector: 'debian-12', labels: ['debian-12'], replicas: 1, environment: 'debian-12' }], packages: ['gcc'] })
    expect(jobBodySchema.safeParse(good).success).toBe(true)
    expect(jobBodySchema.safeParse({ ...good, platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 1, environment: 'debian-12' }] }).success).toBe(false)
    expect(jobBodySchema.safeParse({ ...good, platforms: [...good.platforms, { selector: 'linux-x64', labels: ['linux-x64'], replicas: 1 }] }).success).toBe(false)
    expect(jobBodySchema.safeParse({ ...good, packages: ['texinfo', 'gcc'] }).success).toBe(false)
    const result = resultBody(sha('job'), { environment: { name: 'debian-12', manifest: sha('m'), packages: { gcc: '4:12.2.0-3' } } })
    expect(resultBodySchema.safeParse(result).success).toBe(true)
    expect(resultBodySchema.safeParse({ ...result, environment: { name: 'host', manifest: sha('m'), packages: {} } }).success).toBe(false)
  })
})

describe('who can build a platform with an environment', () => {
  const NOW = 1_800_000_000_000
  const member = (author: string, fields: Partial<Member> = {}): Member => ({ author, platforms: ['linux-x64', 'debian-12'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, lastSeen: NOW, ...fields })

  it('needs the environment ready, not only its label (a host that is Debian 12 has the label)', () => {
    const platform = { labels: ['debian-12', 'linux-x64'], environment: 'debian-12' }
    expect(canBuild(member('a'), platform)).toBe(false)
    expect(canBuild(member('a', { environments: ['debian-12'] }), platform)).toBe(true)
    expect(canBuild(member('a'), { labels: ['debian-12'] })).toBe(true)
  })

  it('claims only where it has the environment, and says which environment nobody offers', () => {
    const world = new World()
    world.time = NOW - 10_000
    const submitter = world.author()
    const job = submitter.job({ platforms: [{ selector: 'debian-12+linux-x64', labels: ['debian-12', 'linux-x64'], replicas: 1, environment: 'debian-12' }] })
    const view = foldJob(job, [])
    const hostOnly = member('h')
    const withEnv = member('e', { environments: ['debian-12'] })
    const decide = (self: Member, members: Member[]) => decideClaims({ now: NOW, self: { author: self.author, platforms: self.platforms, ...(self.environments !== undefined ? { environments: self.environments } : {}), free: 1, admit: () => ({ ok: true }) }, members, jobs: [view], leaseMs: CLAIM_LEASE_MS })
    expect(decide(hostOnly, [hostOnly, withEnv])).toEqual([])
    expect(decide(withEnv, [hostOnly, withEnv]).map((c) => c.platform)).toEqual(['debian-12+linux-x64'])
    expect(explainUnmatched(view, 'debian-12+linux-x64', [hostOnly], NOW)).toEqual({
      verdict: 'unmatched',
      reason: 'unmatched: no live node offers the environment debian-12 on linux-x64 (1 offers the labels debian-12+linux-x64 without having the environment ready)'
    })
  })
})

describe('verdicts on results built in environments', () => {
  const env = (manifest: string, packages: Record<string, string>) => ({ name: 'debian-12', manifest: sha(manifest), packages })

  it('name the packages whose versions differ when the builders\' environments differ', () => {
    const world = new World()
    const [submitter, a, b] = [world.author(), world.author(), world.author()]
    const job = submitter.job({ packages: ['debhelper'], platforms: [{ selector: 'debian-12', labels: ['debian-12'], replicas: 2, environment: 'debian-12' }] })
    const one = a.result(job, { platform: 'debian-12', artifacts: [artifact('x.deb', 'one')], environment: env('old', { debhelper: '13.11.4', libc6: '2.36-9' }) })
    const two = b.result(job, { platform: 'debian-12', artifacts: [artifact('x.deb', 'two')], environment: env('new', { debhelper: '13.11.6', libc6: '2.36-9' }) })
    const view = foldJob(job, [one, two])
    expect(view.platforms[0]!.verdict).toBe('mismatch')
    expect(view.platforms[0]!.reason).toMatch(/; environments differ: debhelper (13\.11\.4 vs 13\.11\.6|13\.11\.6 vs 13\.11\.4)$/)
    expect(view.platforms[0]!.environment).toBe('debian-12')
  })

  it('say the build is not deterministic when the environment is the same', () => {
    const world = new World()
    const [submitter, a, b] = [world.author(), world.author(), world.author()]
    const job = submitter.job({ platforms: [{ selector: 'debian-12', labels: ['debian-12'], replicas: 2, environment: 'debian-12' }] })
    const same = env('same', { libc6: '2.36-9' })
    const view = foldJob(job, [
      a.result(job, { platform: 'debian-12', artifacts: [artifact('out', '1')], environment: same }),
      b.result(job, { platform: 'debian-12', artifacts: [artifact('out', '2')], environment: same })
    ])
    expect(view.platforms[0]!.reason).toContain(`every side had the same environment (debian-12 ${sha('same').slice(0, 12)}): the build is not deterministic`)
  })

  it('name, for a file declared independent, the packages that differ between the platforms', () => {
    const world = new World()
    const [submitter, a, b] = [world.author(), world.author(), world.author()]
    const job = submitter.job({
      packages: ['python3-wheel'],
      independent: ['*.whl'],
      artifacts: ['*.whl'],
      platforms: [
        { selector: 'debian-11', labels: ['debian-11'], replicas: 1, environment: 'debian-11' },
        { selector: 'debian-12', labels: ['debian-12'], replicas: 1, environment: 'debian-12' }
      ]
    })
    const view = foldJob(job, [
      a.result(job, { platform: 'debian-11', artifacts: [artifact('g.whl', 'old')], environment: { name: 'debian-11', manifest: sha('11'), packages: { 'python3-wheel': '0.34.2-1', python3: '3.9.2-3' } } }),
      b.result(job, { platform: 'debian-12', artifacts: [artifact('g.whl', 'new')], environment: { name: 'debian-12', manifest: sha('12'), packages: { 'python3-wheel': '0.38.4-2', python3: '3.11.2-1+b1' } } })
    ])
    expect(view.crossPlatform.verdict).toBe('mismatch')
    expect(view.crossPlatform.reason).toMatch(/^g\.whl differs across platforms: debian-11 \w+ vs debian-12 \w+; environments differ: python3-wheel 0\.34\.2-1 vs 0\.38\.4-2, python3 3\.9\.2-3 vs 3\.11\.2-1\+b1$/)
    expect(view.platforms.map((p) => p.decidedEnvironment?.name)).toEqual(['debian-11', 'debian-12'])
  })
})
