import { describe, expect, it } from 'vitest'
import { NEWCOMER_SCORE, computeReputation, policyWithReputation } from '../../src/jobs/reputation.js'
import { foldAll } from '../../src/jobs/state.js'
import { EVIL, World, platforms } from './helpers.js'

describe('reputation', () => {
  it('drops for a liar outvoted by the quorum, rises for honest builders, and can exclude the liar', () => {
    const world = new World()
    const [submitter, a, b, liar] = [world.author(), world.author(), world.author(), world.author()]
    const entries = []
    for (let i = 0; i < 4; i++) {
      const job = submitter.job({ name: `job ${i}`, platforms: platforms(['linux-x64', 3]) })
      entries.push(job, a.result(job), b.result(job), liar.result(job, { artifacts: EVIL }))
    }
    // A job where only the liar and one honest builder reported: a mismatch, undecided for both.
    const contested = submitter.job({ name: 'contested' })
    entries.push(contested, a.result(contested), liar.result(contested, { artifacts: EVIL }))

    const base = { quorum: 2 }
    const reputations = computeReputation(foldAll(entries, base))
    const of = (key: string) => reputations.find((r) => r.builder === key)!
    expect(of(a.key)).toEqual({ builder: a.key, results: 5, agreed: 4, disagreed: 0, undecided: 1, score: 5 / 6 })
    expect(of(b.key)).toMatchObject({ results: 4, agreed: 4, disagreed: 0, undecided: 0, score: 5 / 6 })
    expect(of(liar.key)).toEqual({ builder: liar.key, results: 5, agreed: 0, disagreed: 4, undecided: 1, score: 1 / 6 })
    expect(reputations.map((r) => r.builder)).toEqual([a.key, b.key, liar.key].sort())

    expect(foldAll(entries, base).at(-1)!.platforms[0]!.verdict).toBe('mismatch')
    const policy = policyWithReputation(base, reputations, 0.4)
    expect([...policy.excluded!]).toEqual([liar.key])
    expect(policy.quorum).toBe(2)
    // Without the liar's vote, the honest result alone is short of the quorum: pending, not mismatch.
    expect(foldAll(entries, policy).at(-1)!.platforms[0]!.verdict).toBe('pending')
    expect(foldAll(entries, { ...policy, quorum: 1 }).at(-1)!.platforms[0]!.verdict).toBe('verified')
    // A newcomer (no record) is not excluded by a threshold at or below the prior.
    expect(NEWCOMER_SCORE).toBe(0.5)
    expect(policyWithReputation({}, [], 0.5).excluded!.size).toBe(0)
  })

  it('counts one vote per builder and slot; refusals and superseded results do not count', () => {
    const world = new World()
    const [submitter, a, b] = [world.author(), world.author(), world.author()]
    const job = submitter.job()
    const entries = [job, a.result(job, { artifacts: EVIL }), a.result(job), a.result(job, { status: 'refused', steps: [], artifacts: [], log: null, logSize: 0 }), b.result(job)]
    const [repA] = computeReputation(foldAll(entries)).filter((r) => r.builder === a.key)
    expect(repA).toMatchObject({ results: 1, agreed: 1, disagreed: 0 })
  })
})
