import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { claimBodySchema, jobBodySchema, resultBodySchema } from '../../src/jobs/bodies.js'
import { claimBodyAccepted, jobBodyAccepted, resultBodyAccepted } from '../../src/jobs/fast-bodies.js'
import { artifact, jobBody, resultBody, sha } from './helpers.js'
import { mutate, paths } from './mutations.js'

const JOB = sha('a job')

/** Valid bodies of each kind, in the shapes nodes write (and a few rarer ones). */
const bases = {
  claim: [{ job: JOB, platform: 'linux-x64', lease: 1 }, { job: JOB, platform: 'debian-12+linux-x64', lease: 0 }],
  result: [
    resultBody(JOB),
    resultBody(JOB, { status: 'fail' }),
    resultBody(JOB, { status: 'timeout', steps: [{ name: 'build', exit: null, signal: 'SIGKILL', ms: 600_000 }], log: null, logSize: 0, reason: 'too slow' }),
    resultBody(JOB, { provenance: 'ab'.repeat(64), env: { ...resultBody(JOB).env, warning: 'no sandbox' } }),
    resultBody(JOB, { artifacts: [artifact('a/b', 'x'), artifact('a/c', 'y')] })
  ],
  job: [
    jobBody(),
    jobBody({ platforms: [{ selector: 'debian-12+linux-x64', labels: ['debian-12', 'linux-x64'], replicas: 3 }, { selector: 'linux-arm64', labels: ['linux-arm64'], replicas: 1 }] }),
    jobBody({ limits: { memoryMb: 512, diskMb: 100, cpuSeconds: 60, processes: 64 }, artifacts: ['dist/*.whl', 'out/x'], independent: ['dist/*.tar.gz'], network: true })
  ]
} as const

const checks = {
  claim: { accepted: claimBodyAccepted, schema: claimBodySchema },
  result: { accepted: resultBodyAccepted, schema: resultBodySchema },
  job: { accepted: jobBodyAccepted, schema: jobBodySchema }
}

/** Values a mutation may put anywhere: near misses of every rule the bodies have. */
const oddValues: unknown[] = [
  undefined, null, true, false, 0, -1, 1, 1.5, 255, 256, 7, 8, 2 ** 53, Number.NaN, Infinity, '', 'x', 'SIGKILL', 'SIG', 'sigkill',
  'pass', 'maybe', 'linux-x64', 'Linux', 'linux-x64+debian-12', 'a+a', 'a\nb', 'a\u007fb', '/abs', 'a/../b', 'a//b', './a', 'a\\b', 'dist/*',
  JOB, JOB.toUpperCase(), JOB.slice(1), 'ab'.repeat(64), 'x'.repeat(65), 'x'.repeat(129), 'x'.repeat(257), 'x'.repeat(513), 'x'.repeat(1025),
  'x'.repeat(4097), [], ['linux-x64'], ['b', 'a'], ['a', 'a'], [{}], {}, { x: 1 }, Object.create(null), new Date(0), [JOB]
]

describe('fast body checks (fast-bodies.ts)', () => {
  it('vouch for the common valid bodies, which the schemas accept', () => {
    for (const [kind, bodies] of Object.entries(bases)) {
      const { accepted, schema } = checks[kind as keyof typeof checks]
      for (const body of bodies) {
        expect(schema.safeParse(body).success, `${kind} ${JSON.stringify(body)}`).toBe(true)
        expect(accepted(body), `${kind} ${JSON.stringify(body)}`).toBe(true)
      }
    }
  })

  it('never vouch for a body its schema refuses (mutations of valid bodies)', () => {
    const kinds = Object.keys(bases) as Array<keyof typeof bases>
    const mutation = fc.record({
      kind: fc.constantFrom(...kinds),
      base: fc.nat(),
      steps: fc.array(fc.record({ path: fc.nat(), value: fc.constantFrom(...oddValues), action: fc.constantFrom('set', 'delete', 'extra') as fc.Arbitrary<'set' | 'delete' | 'extra'> }), { minLength: 1, maxLength: 3 })
    })
    let refused = 0
    fc.assert(fc.property(mutation, ({ kind, base, steps }) => {
      const bodies = bases[kind]
      let body: unknown = bodies[base % bodies.length]
      for (const step of steps) {
        const all = paths(body)
        if (all.length === 0) break
        body = mutate(body, all[step.path % all.length]!, step.value, step.action)
      }
      const { accepted, schema } = checks[kind]
      const valid = schema.safeParse(body).success
      if (!valid) refused++
      if (accepted(body)) expect(valid, JSON.stringify(body)).toBe(true)
    }), { numRuns: 6000 })
    // The mutations do reach the rules: most of them break the body.
    expect(refused).toBeGreaterThan(3000)
  })
})
