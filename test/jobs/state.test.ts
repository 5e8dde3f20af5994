import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { foldAll, foldJob, withLiveness } from '../../src/jobs/state.js'
import type { TrustPolicy } from '../../src/jobs/trust.js'
import { EVIL, GOOD, World, artifact, platforms, sha, shuffled } from './helpers.js'

function setup () {
  const world = new World()
  const [submitter, a, b, c, liar] = [world.author(), world.author(), world.author(), world.author(), world.author()]
  return { world, submitter, a, b, c, liar }
}

describe('the fold', () => {
  it('verified: two builders agree on status and every artifact', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    const related = [a.claim(job), b.claim(job), a.result(job), b.result(job)]
    const view = foldJob(job, related)
    const [linux] = view.platforms
    expect(linux!.verdict).toBe('verified')
    expect(linux!.agreeing).toBe(2)
    expect(linux!.quorum).toBe(2)
    expect(linux!.artifacts).toEqual(GOOD)
    expect(linux!.reason).toBe('2 builders agree on the status and every artifact')
    expect(linux!.claims.map((cl) => cl.builder)).toEqual([a.key, b.key])
    expect(linux!.results.map((r) => [r.builder, r.trusted, r.counted, r.agrees])).toEqual([[a.key, true, true, true], [b.key, true, true, true]])
    expect(view.verdict).toBe('verified')
    expect(view.submitter).toBe(submitter.key)
    expect(view.entries).toEqual([job.id, ...related.map((e) => e.id)])
    expect(view.crossPlatform.verdict).toBe('none')
  })

  it('failed: the builders agree that it fails, and the reason names the step', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    const view = foldJob(job, [a.result(job, { status: 'fail' }), b.result(job, { status: 'fail' })])
    expect(view.platforms[0]!.verdict).toBe('failed')
    expect(view.platforms[0]!.reason).toBe('2 builders agree: fail (step "test" exited 1)')
    expect(view.verdict).toBe('failed')
    expect(view.reason).toBe('linux-x64: 2 builders agree: fail (step "test" exited 1)')
  })

  it('mismatch on a file: names the builders, the file, and that the status agrees', () => {
    const { submitter, a, liar } = setup()
    const job = submitter.job()
    const view = foldJob(job, [a.result(job), liar.result(job, { artifacts: EVIL })])
    const linux = view.platforms[0]!
    expect(linux.verdict).toBe('mismatch')
    expect(linux.mismatch!.statusDiffers).toBe(false)
    expect(linux.mismatch!.files).toEqual(['dist/app.whl'])
    expect(linux.mismatch!.groups.map((g) => g.builders).flat().sort()).toEqual([a.key, liar.key].sort())
    expect(linux.reason).toBe('builders disagree on dist/app.whl')
    expect(view.verdict).toBe('mismatch')
    expect(view.reason).toBe('linux-x64: builders disagree on dist/app.whl')
    expect(linux.results.every((r) => r.agrees === null)).toBe(true)
  })

  it('mismatch on the status: statusDiffers, and files one side lacks', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    const view = foldJob(job, [a.result(job), b.result(job, { status: 'fail' })])
    const mismatch = view.platforms[0]!.mismatch!
    expect(mismatch.statusDiffers).toBe(true)
    expect(mismatch.files).toEqual(['dist/app.tar.gz', 'dist/app.whl'])
    expect(view.platforms[0]!.reason).toMatch(/^builders disagree on the status: (pass|fail) \([0-9a-f]{8}\) vs (pass|fail) \([0-9a-f]{8}\) and on dist\/app\.tar\.gz, dist\/app\.whl$/)
  })

  it('pending: too few results, or none; refused results never vote', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    expect(foldJob(job, []).platforms[0]!.reason).toBe('no trusted results yet (2 agreeing needed)')
    const view = foldJob(job, [a.result(job), b.result(job, { status: 'refused', reason: 'network', steps: [], artifacts: [], log: null, logSize: 0 })])
    expect(view.platforms[0]!.verdict).toBe('pending')
    expect(view.platforms[0]!.reason).toBe('1 of 2 agreeing results')
    expect(view.platforms[0]!.agreeing).toBe(1)
    expect(view.verdict).toBe('pending')
  })

  it('cancelled only by the submitter', () => {
    const { submitter, a } = setup()
    const job = submitter.job()
    const byOther = foldJob(job, [a.cancel(job, 'mine now')])
    expect(byOther.cancelled).toBe(false)
    expect(byOther.verdict).toBe('pending')
    const bySubmitter = foldJob(job, [a.cancel(job, 'mine now'), submitter.cancel(job, 'wrong branch')])
    expect(bySubmitter.cancelled).toBe(true)
    expect(bySubmitter.cancelReason).toBe('wrong branch')
    expect(bySubmitter.verdict).toBe('cancelled')
    expect(bySubmitter.reason).toBe('cancelled by the submitter: wrong branch')
  })

  it('a liar is outvoted with quorum 2 of 3, and marked as disagreeing', () => {
    const { submitter, a, b, liar } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 3]) })
    const related = [a.result(job), liar.result(job, { artifacts: EVIL }), b.result(job)]
    const view = foldJob(job, related, { quorum: 2 })
    const linux = view.platforms[0]!
    expect(linux.verdict).toBe('verified')
    expect(linux.agreeing).toBe(2)
    expect(linux.artifacts).toEqual(GOOD)
    expect(linux.results.find((r) => r.builder === liar.key)!.agrees).toBe(false)
    expect(linux.results.filter((r) => r.agrees === true).map((r) => r.builder).sort()).toEqual([a.key, b.key].sort())
    expect(linux.reason).toBe(`2 builders agree on the status and every artifact; outvoted: ${liar.key.slice(0, 8)} (dist/app.whl)`)
    // With the default quorum (all 3 replicas) the same results are a mismatch.
    expect(foldJob(job, related).platforms[0]!.verdict).toBe('mismatch')
  })

  it('two groups each reaching quorum contradict each other: mismatch, not a majority vote', () => {
    const { submitter, a, b, c, liar } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 4]) })
    const view = foldJob(job, [a.result(job), b.result(job), c.result(job, { artifacts: EVIL }), liar.result(job, { artifacts: EVIL })], { quorum: 2 })
    expect(view.platforms[0]!.verdict).toBe('mismatch')
    const single = foldJob(job, [a.result(job), liar.result(job, { artifacts: EVIL })], { quorum: 1 })
    expect(single.platforms[0]!.verdict).toBe('mismatch')
  })

  it('a trust list that excludes a builder changes the verdict exactly as expected', () => {
    const { world, submitter, a, b, liar } = setup()
    const job = submitter.job()
    const related = [a.result(job), liar.result(job, { artifacts: EVIL })]
    expect(foldJob(job, related).platforms[0]!.verdict).toBe('mismatch')

    const trusted: TrustPolicy = { trusted: new Set([a.key, b.key]) }
    const pending = foldJob(job, related, trusted).platforms[0]!
    expect(pending.verdict).toBe('pending')
    expect(pending.reason).toBe('1 of 2 agreeing results; 1 from untrusted builders not counted')
    expect(pending.results.map((r) => [r.trusted, r.counted])).toEqual([[true, true], [false, false]])

    expect(foldJob(job, related, { ...trusted, quorum: 1 }).platforms[0]!.verdict).toBe('verified')
    expect(foldJob(job, related, { excluded: new Set([liar.key]), quorum: 1 }).platforms[0]!.verdict).toBe('verified')

    const withB = [...related, b.result(job)]
    const verified = foldJob(job, withB, trusted).platforms[0]!
    expect(verified.verdict).toBe('verified')
    // The untrusted liar's vote is not counted, but it is still seen to disagree.
    expect(verified.results.find((r) => r.builder === liar.key)).toMatchObject({ trusted: false, counted: false, agrees: false })
    void world
  })

  it('counts each builder once: its latest non-refused result', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    const first = a.result(job, { artifacts: EVIL })
    const second = a.result(job)
    const refusal = a.result(job, { status: 'refused', steps: [], artifacts: [], log: null, logSize: 0 })
    const view = foldJob(job, [refusal, second, first, b.result(job)])
    const linux = view.platforms[0]!
    expect(linux.verdict).toBe('verified')
    expect(linux.results.filter((r) => r.builder === a.key).map((r) => [r.latest, r.agrees])).toEqual([[false, null], [true, true], [false, null]])
  })

  it('does not count an author caught forking its chain', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    const claim = a.claim(job)
    const honest = a.result(job)
    const forked = a.fork('result', { ...honest.entry.body, artifacts: EVIL }, honest.entry.seq, claim.id)
    const view = foldJob(job, [claim, honest, forked, b.result(job)])
    expect(view.platforms[0]!.results.filter((r) => r.builder === a.key).every((r) => !r.trusted)).toBe(true)
    expect(view.platforms[0]!.verdict).toBe('pending')
  })

  it('ignores entries of other jobs and platforms the job does not have', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job()
    const other = submitter.job({ name: 'other' })
    const stray = a.result(job, { platform: 'linux-arm64' })
    const view = foldJob(job, [a.result(other), stray, b.result(job), other])
    expect(view.platforms[0]!.results.map((r) => r.builder)).toEqual([b.key])
    expect(view.entries).toEqual([job.id, stray.id, view.platforms[0]!.results[0]!.entry])
  })

  describe('cross-platform', () => {
    function twoPlatforms (macSdist: string) {
      const { submitter, a, b, c } = setup()
      const job = submitter.job({ platforms: platforms(['linux-x64', 2], ['macos-arm64', 2]), independent: ['dist/*.tar.gz'] })
      const mac = [artifact('dist/app-macos.whl', 'mac wheel'), artifact('dist/app.tar.gz', macSdist)]
      const related = [
        a.result(job), b.result(job),
        b.result(job, { platform: 'macos-arm64', artifacts: mac }), c.result(job, { platform: 'macos-arm64', artifacts: mac })
      ]
      return { job, related }
    }

    it('agree: platform-independent files hash the same on every verified platform', () => {
      const { job, related } = twoPlatforms('sdist')
      const view = foldJob(job, related)
      expect(view.crossPlatform).toEqual({
        verdict: 'agree',
        files: [{ path: 'dist/app.tar.gz', hashes: { 'linux-x64': sha('sdist'), 'macos-arm64': sha('sdist') }, agree: true }]
      })
      expect(view.verdict).toBe('verified')
      expect(foldJob(job, related.slice(0, 3)).crossPlatform.verdict).toBe('pending')
    })

    it('mismatch: the job verdict becomes mismatch, naming the file', () => {
      const { job, related } = twoPlatforms('different sdist')
      const view = foldJob(job, related)
      expect(view.platforms.map((p) => p.verdict)).toEqual(['verified', 'verified'])
      expect(view.crossPlatform.verdict).toBe('mismatch')
      expect(view.verdict).toBe('mismatch')
      expect(view.reason).toBe(`cross-platform: dist/app.tar.gz differs across platforms: linux-x64 ${sha('sdist').slice(0, 12)} vs macos-arm64 ${sha('different sdist').slice(0, 12)}`)
    })
  })

  it('gives the same JSON for the same entries in any order, with duplicates', () => {
    const { submitter, a, b, c, liar } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 3], ['debian-12+linux-arm64', 2]), independent: ['dist/*.tar.gz'] })
    const related = [
      a.claim(job), b.claim(job), liar.claim(job),
      a.result(job), liar.result(job, { artifacts: EVIL }), b.result(job, { artifacts: EVIL }), b.result(job),
      c.claim(job, 'debian-12+linux-arm64'), c.result(job, { platform: 'debian-12+linux-arm64', status: 'fail' }),
      a.result(job, { platform: 'debian-12+linux-arm64', status: 'fail' }),
      liar.cancel(job),
      liar.write('diagnosis', { job: job.id, platform: 'linux-x64', report: sha('report'), summary: 'wheel differs', builders: [a.key, liar.key], files: ['dist/app.whl'] })
    ]
    const policies: TrustPolicy[] = [{}, { quorum: 2 }, { trusted: new Set([a.key, b.key, c.key]) }]
    for (const policy of policies) {
      const expected = JSON.stringify(foldJob(job, related, policy))
      for (let seed = 1; seed <= 25; seed++) {
        const input = shuffled([...related, ...related.slice(0, seed % related.length)], seed)
        expect(JSON.stringify(foldJob(job, input, policy)), `seed ${seed}`).toBe(expected)
      }
    }
    const view = foldJob(job, related, { quorum: 2 })
    expect(view.platforms.map((p) => p.verdict)).toEqual(['verified', 'failed'])
    expect(view.verdict).toBe('failed')
    expect(view.diagnoses).toHaveLength(1)
    expect(view.diagnoses[0]).toMatchObject({ platform: 'linux-x64', summary: 'wheel differs', author: liar.key })
    expect(JSON.parse(JSON.stringify(view))).toEqual(view)
  })

  it('foldAll folds every job of an export like foldJob does', () => {
    const { submitter, a, b } = setup()
    const one = submitter.job({ name: 'one' })
    const two = submitter.job({ name: 'two' })
    const r1 = [a.result(one), b.result(one)]
    const r2 = [a.result(two, { status: 'fail' })]
    const all = shuffled([one, two, ...r1, ...r2, submitter.write('revoke', {})], 7)
    expect(foldAll(all)).toEqual([foldJob(one, r1), foldJob(two, r2)])
  })

  it('withLiveness overlays unmatched on pending platforms only, and the job verdict follows', () => {
    const { submitter, a, b } = setup()
    const job = submitter.job({ platforms: platforms(['linux-x64', 2], ['linux-arm64', 2]) })
    const view = foldJob(job, [a.result(job), b.result(job)])
    const live = withLiveness(view, (p) => (p.selector === 'linux-arm64' ? { verdict: 'unmatched', reason: 'unmatched: no live node offers linux-arm64' } : { verdict: 'unmatched', reason: 'never applied' }))
    expect(live.platforms.map((p) => [p.verdict, p.reason])).toEqual([
      ['verified', '2 builders agree on the status and every artifact'],
      ['unmatched', 'unmatched: no live node offers linux-arm64']
    ])
    expect(live.verdict).toBe('unmatched')
    expect(live.reason).toBe('linux-arm64: unmatched: no live node offers linux-arm64')
    expect(view.platforms[1]!.verdict).toBe('pending')
    const queued = withLiveness(view, () => ({ verdict: 'pending', reason: 'queued: all 2 matching nodes are busy' }))
    expect(queued.verdict).toBe('pending')
    expect(queued.platforms[1]!.reason).toBe('queued: all 2 matching nodes are busy')
  })

  it('refuses to fold an entry that is not a job, and a malformed policy', () => {
    const { submitter } = setup()
    const job = submitter.job()
    expect(() => foldJob(submitter.cancel(job), [])).toThrow(/is a cancel, not a job/)
    expect(() => foldJob(job, [], { quorum: 0 })).toThrow('the quorum must be a whole number of builders, at least 1; got 0')
  })
})

describe('the fold, by property', () => {
  it('any entries in any order give the same view, and a decided platform has exactly one outcome at quorum', () => {
    const world = new World()
    const submitter = world.author()
    const builders = Array.from({ length: 5 }, () => world.author())
    const job = submitter.job({ platforms: platforms(['linux-x64', 3], ['macos-arm64', 2]), independent: ['dist/*.tar.gz'] })
    const outcomes = [{}, { artifacts: EVIL }, { status: 'fail' as const }, { status: 'refused' as const, steps: [], artifacts: [], log: null, logSize: 0 }]
    // Pre-sign a pool of entries; properties pick subsets and orders of it.
    const pool = builders.flatMap((b) => ['linux-x64', 'macos-arm64'].flatMap((platform) => [
      b.claim(job, platform),
      ...outcomes.map((o) => b.result(job, { platform, ...o }))
    ]))
    pool.push(submitter.cancel(job))
    fc.assert(fc.property(
      fc.subarray(pool), fc.integer({ min: 1, max: 1 << 30 }), fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      (chosen, seed, quorum) => {
        const policy: TrustPolicy = quorum === undefined ? {} : { quorum }
        const view = foldJob(job, chosen, policy)
        expect(JSON.stringify(foldJob(job, shuffled(chosen, seed), policy))).toBe(JSON.stringify(view))
        for (const p of view.platforms) {
          const agreeing = p.results.filter((r) => r.agrees === true && r.counted).length
          if (p.verdict === 'verified' || p.verdict === 'failed') expect(agreeing).toBeGreaterThanOrEqual(p.quorum)
          else expect(p.results.every((r) => r.agrees === null)).toBe(true)
          if (p.verdict === 'mismatch') expect(p.mismatch!.groups.length).toBeGreaterThan(1)
        }
      }
    ), { numRuns: 300 })
  })
})
