import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { jobSpecAccepted } from '../../src/jobs/fast-bodies.js'
import { checkJobSpec } from '../../src/jobs/spec-file.js'
import { validateJobSpec } from '../../src/jobs/spec.js'
import { ROOT } from '../helpers/cluster.js'
import { mutate, paths } from './mutations.js'

/** Every example's buildhaus.json: what users submit. */
const examples = readdirSync(join(ROOT, 'examples')).map((name) => JSON.parse(readFileSync(join(ROOT, 'examples', name, 'buildhaus.json'), 'utf8')) as unknown)

/** Valid specs in the shapes the hand-written check takes on, and two it leaves to the schema. */
const bases: unknown[] = [
  ...examples,
  { name: 'all', platforms: ['linux-x64', 'linux-arm64+debian-12'], replicas: 3, steps: [{ name: 'a', run: 'true' }, { name: 'b', run: 'make' }], artifacts: ['dist/*'], independent: ['dist/x'], timeout: 600, resources: { memoryMb: 512, diskMb: 100, cpuSeconds: 60, processes: 64 }, network: true, root: false },
  { name: 'packages', environment: ['debian-12', 'debian-13'], packages: ['gcc', 'gcc', 'build-essential'], steps: [{ name: 'b', run: 'cc x.c' }] },
  { name: 'host too', environment: ['host', 'debian-12'], platforms: ['linux-x64'], steps: [{ name: 'b', run: 'true' }] },
  { name: 'labels', platforms: [['linux-x64', 'debian-12']], steps: [{ name: 'b', run: 'true' }] },
  { name: 'per platform', platforms: ['linux-x64'], replicas: { 'linux-x64': 2 }, steps: [{ name: 'b', run: 'true' }] }
]

/** Near misses of every rule a spec has. */
const oddValues: unknown[] = [
  undefined, null, true, false, 0, -1, 1, 1.5, 9, 10, 11, 59, 60, 86_401, 2 ** 53, Number.NaN, '', 'x', 'host', 'debian-12', 'Debian-12', 'gcc', 'g',
  'linux-x64', 'Linux', 'linux-x64+debian-12', 'a+a', 'a+', 'a\nb', 'a\u007fb', '/abs', 'a/../b', 'a//b', 'x'.repeat(129), 'x'.repeat(257),
  [], ['linux-x64'], ['b', 'a'], ['a', 'a'], ['host'], ['debian-12', 'debian-12'], [{}], {}, { x: 1 }, { name: 'a', run: 'true' }, Object.create(null)
]

/** What checking a spec gives: the JobSpec, or the error's name and message. */
async function outcome (check: () => unknown): Promise<unknown> {
  try {
    return await check()
  } catch (err) {
    return { error: (err as Error).name, message: (err as Error).message }
  }
}

describe('buildhaus.json without zod (fast-bodies.ts jobSpecAccepted, spec-file.ts)', () => {
  it('vouches for every example, and makes the JobSpec the schema makes', async () => {
    for (const spec of examples) {
      expect(jobSpecAccepted(spec), JSON.stringify(spec)).toBe(true)
      expect(await checkJobSpec(spec)).toEqual(validateJobSpec(spec))
    }
  })

  it('gives exactly the schema\'s JobSpec or error for any mutation of a valid spec, and vouches only for what it accepts', async () => {
    let refused = 0
    let vouched = 0
    await fc.assert(fc.asyncProperty(
      fc.nat(),
      fc.array(fc.record({ path: fc.nat(), value: fc.constantFrom(...oddValues), action: fc.constantFrom('set', 'delete', 'extra') as fc.Arbitrary<'set' | 'delete' | 'extra'> }), { minLength: 0, maxLength: 3 }),
      async (base, steps) => {
        let spec = bases[base % bases.length]
        for (const step of steps) {
          const all = paths(spec)
          if (all.length === 0) break
          spec = mutate(spec, all[step.path % all.length]!, step.value, step.action)
        }
        const reference = await outcome(() => validateJobSpec(spec))
        if (typeof reference === 'object' && reference !== null && 'error' in reference) refused++
        if (jobSpecAccepted(spec)) {
          vouched++
          expect(reference, JSON.stringify(spec)).not.toHaveProperty('error')
        }
        expect(await outcome(async () => await checkJobSpec(spec))).toEqual(reference)
      }), { numRuns: 3000 })
    // The mutations reach the rules, and the check still vouches for many specs.
    expect(refused).toBeGreaterThan(1000)
    expect(vouched).toBeGreaterThan(300)
  })
})
