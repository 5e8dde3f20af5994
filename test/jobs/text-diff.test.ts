import { describe, expect, it } from 'vitest'
import { Deadline } from '../../src/jobs/diagnosis/deadline.js'
import { countChangeGroups, diffLines } from '../../src/jobs/diagnosis/text-diff.js'

describe('diffLines (jsdiff underneath)', () => {
  it('gives the shortest edit script, line indices on both sides', () => {
    const ops = diffLines(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'e'], 100, new Deadline(10_000))
    expect(ops).toEqual([
      { op: 'equal', a: 0, b: 0 },
      { op: 'delete', a: 1 },
      { op: 'insert', b: 1 },
      { op: 'equal', a: 2, b: 2 },
      { op: 'equal', a: 3, b: 3 },
      { op: 'insert', b: 4 }
    ])
    expect(countChangeGroups(ops!)).toBe(2)
    expect(diffLines(['same'], ['same'], 0, new Deadline(10_000))).toEqual([{ op: 'equal', a: 0, b: 0 }])
  })

  it('gives up past the edit bound, and at the deadline (which then counts as hit)', () => {
    const a = Array.from({ length: 100 }, (_, i) => `a${i}`)
    const b = Array.from({ length: 100 }, (_, i) => `b${i}`)
    expect(diffLines(a, b, 199, new Deadline(10_000))).toBeUndefined()
    expect(diffLines(a, b, 200, new Deadline(10_000))).toHaveLength(200)
    const expired = new Deadline(0)
    expect(diffLines(['x'], ['y'], 10, expired)).toBeUndefined()
    expect(expired.hit).toBe(true)
  })
})
