import { describe, expect, it } from 'vitest'
import { rank, rendezvousScore } from '../../src/jobs/rendezvous.js'
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
})
