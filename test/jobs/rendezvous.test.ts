import { describe, expect, it } from 'vitest'
import { RankCache, rank, rendezvousScore } from '../../src/jobs/rendezvous.js'
import { sha } from './helpers.js'

const nodes = ['a', 'b', 'c', 'd'].map((n) => sha(`node ${n}`))

describe('rendezvous ranking', () => {
  it('is deterministic and independent of the order of candidates', () => {
    const job = sha('job 1')
    const first = rank(job, 'linux-x64', nodes)
    expect(rank(job, 'linux-x64', [...nodes].reverse())).toEqual(first)
    expect(rank(job, 'linux-x64', [...nodes, nodes[0]!])).toEqual(first)
    expect([...first].sort()).toEqual([...nodes].sort())
    expect(rendezvousScore(job, 'linux-x64', nodes[0]!)).toBe(sha(`${job}\nlinux-x64\n${nodes[0]}`))
  })

  it('spreads 1000 jobs evenly over 4 nodes, and over platforms of the same job', () => {
    const first = new Map<string, number>()
    let samePlatformWinner = 0
    for (let i = 0; i < 1000; i++) {
      const job = sha(`job ${i}`)
      const winner = rank(job, 'linux-x64', nodes)[0]!
      first.set(winner, (first.get(winner) ?? 0) + 1)
      if (rank(job, 'linux-arm64', nodes)[0] === winner) samePlatformWinner++
    }
    // 250 expected each; a binomial(1000, 1/4) stays within ±60 with overwhelming probability.
    for (const node of nodes) expect(Math.abs((first.get(node) ?? 0) - 250)).toBeLessThan(60)
    expect(Math.abs(samePlatformWinner - 250)).toBeLessThan(60)
  })

  it('moves only the slots of a node that leaves', () => {
    let moved = 0
    for (let i = 0; i < 500; i++) {
      const job = sha(`job ${i}`)
      const before = rank(job, 'linux-x64', nodes)[0]!
      const after = rank(job, 'linux-x64', nodes.slice(1))[0]!
      if (before !== after) {
        expect(before).toBe(nodes[0])
        moved++
      }
    }
    expect(moved).toBeGreaterThan(0)
  })

  it('a ranking cache gives rank()\'s order for any candidates, as members join and leave, and stays bounded', () => {
    const members = Array.from({ length: 40 }, (_, i) => sha(`member ${i}`))
    const jobs = Array.from({ length: 30 }, (_, i) => sha(`job ${i}`))
    const cache = new RankCache(40 * 20)
    for (let round = 0; round < 4; round++) {
      // Each round a different part of the mesh is live: some leave, others join.
      const live = members.filter((_, i) => (i + round) % 4 !== 0)
      for (const job of jobs.slice(0, 20)) {
        for (const selector of ['linux-x64', 'linux-arm64']) {
          expect(cache.rank(job, selector, live)).toEqual(rank(job, selector, live))
          const some = live.filter((_, i) => i % 3 === round % 3)
          expect(cache.rank(job, selector, [...some, some[0]!])).toEqual(rank(job, selector, some))
        }
      }
      // 20 jobs × 2 platforms × 40 members is twice the bound: the oldest slots were forgotten.
      expect(cache.size.entries).toBeLessThanOrEqual(40 * 20)
    }
    // Slots no longer open are forgotten.
    cache.retain(new Set([`${jobs[19]}/linux-arm64`]))
    expect(cache.size.slots).toBe(1)
    expect(cache.rank(jobs[19]!, 'linux-arm64', members)).toEqual(rank(jobs[19]!, 'linux-arm64', members))
    expect(cache.rank(jobs[25]!, 'linux-x64', [])).toEqual([])
  })
})
