import fc from 'fast-check'
import { jobBodyFromSpec, parseJobSpec, validateJobSpec, type SpecOverrides } from '../../../src/jobs/index.js'
import { hexArb, mutate, mutationsArb, onlyThrows, runs } from '../kit.js'

/** The job spec validator (buildhaus.json) and the spec → job body step, on hostile input. */

const ALLOWED = ['JobSpecError']
const encoder = new TextEncoder()

const goodSpec = {
  name: 'hello',
  platforms: ['linux-x64', ['linux-arm64', 'debian-12'], 'linux-x64+ubuntu-24.04'],
  replicas: { 'linux-x64': 2, 'debian-12+linux-arm64': 1 },
  steps: [{ name: 'build', run: 'make' }, { name: 'test', run: 'make test' }],
  artifacts: ['dist/*.whl', 'dist/*.tar.gz'],
  independent: ['dist/*.tar.gz'],
  timeout: 600,
  resources: { memoryMb: 512, diskMb: 1024, cpuSeconds: 600, processes: 64 },
  network: false,
  root: false
}

const overridesArb: fc.Arbitrary<SpecOverrides> = fc.record({
  platforms: fc.array(fc.oneof(fc.constantFrom('linux-x64', 'a+b', 'A', '', '+', 'x'.repeat(40)), fc.string({ maxLength: 12 })), { maxLength: 4 }),
  replicas: fc.oneof(fc.integer({ min: -2, max: 10 }), fc.constantFrom(1.5, Number.NaN, 2 ** 60)),
  timeout: fc.oneof(fc.integer({ min: -1, max: 100_000 }), fc.constantFrom(0.5, Number.POSITIVE_INFINITY))
}, { requiredKeys: [] })

/** One field of the good spec replaced by anything. */
const fieldSwapArb = fc.tuple(fc.constantFrom(...Object.keys(goodSpec), 'extra', '__proto__'), fc.jsonValue({ maxDepth: 3 }))
  .map(([key, value]) => ({ ...goodSpec, [key]: value }))

export function fuzzJobSpec (scale?: number): number {
  let cases = 0
  // Arbitrary values, and the good spec with one field swapped: a JobSpecError or a spec, nothing else;
  // and a spec that passes makes a job body, or a JobSpecError saying why not.
  fc.assert(fc.property(fc.oneof(fc.anything({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 4 }), fieldSwapArb), overridesArb, hexArb(64), (value, overrides, hash) => {
    cases++
    const spec = onlyThrows(ALLOWED, () => validateJobSpec(value))
    if (spec !== undefined) onlyThrows(ALLOWED, () => jobBodyFromSpec(spec, overrides, { hash, size: 1 }))
  }), { numRuns: runs(4000, scale) })
  // The file's bytes mutated: parse and validate.
  const text = JSON.stringify(goodSpec)
  fc.assert(fc.property(mutationsArb, (mutations) => {
    cases++
    onlyThrows(ALLOWED, () => parseJobSpec(Buffer.from(mutate(encoder.encode(text), mutations)).toString('utf8')))
  }), { numRuns: runs(3000, scale) })
  return cases
}
