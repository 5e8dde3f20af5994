import { describe, expect, it } from 'vitest'
import { jobEntryRules } from '../../src/jobs/bodies.js'
import { offersAll, parseSelector, selectorName } from '../../src/jobs/selector.js'
import { World, artifact, jobBody, resultBody, sha } from './helpers.js'

const JOB = sha('a job')

function problem (type: string, body: unknown): string {
  try {
    jobEntryRules[type]!.validate(body)
  } catch (err) {
    return (err as Error).message
  }
  return 'accepted'
}

describe('selectors', () => {
  it('names a selector by its labels sorted and joined by +, and parses it back', () => {
    expect(selectorName(['linux-x64', 'debian-12'])).toBe('debian-12+linux-x64')
    expect(selectorName(['linux-x64', 'linux-x64'])).toBe('linux-x64')
    expect(parseSelector('linux-x64+debian-12')).toEqual(['debian-12', 'linux-x64'])
    expect(() => parseSelector('')).toThrow('a label must not be empty')
    expect(() => parseSelector('Linux')).toThrow(/lower-case/)
    expect(() => parseSelector(Array.from({ length: 9 }, (_, i) => `l${i}`).join('+'))).toThrow('a platform selector has at most 8 labels, got 9')
  })

  it('a node matches a selector when it offers every label', () => {
    expect(offersAll(['linux-x64', 'debian-12'], ['linux-x64'])).toBe(true)
    expect(offersAll(['linux-x64'], ['debian-12', 'linux-x64'])).toBe(false)
  })
})

describe('entry bodies', () => {
  it('accepts well-formed bodies of every type', () => {
    expect(problem('job', jobBody())).toBe('accepted')
    expect(problem('claim', { job: JOB, platform: 'linux-x64', lease: 1 })).toBe('accepted')
    expect(problem('result', resultBody(JOB))).toBe('accepted')
    expect(problem('result', resultBody(JOB, { status: 'timeout', steps: [{ name: 'build', exit: null, signal: 'SIGKILL', ms: 600_000 }], log: null, logSize: 0 }))).toBe('accepted')
    expect(problem('cancel', { job: JOB })).toBe('accepted')
    expect(problem('cancel', { job: JOB, reason: 'wrong branch' })).toBe('accepted')
    expect(problem('diagnosis', { job: JOB, platform: 'linux-x64', report: sha('r'), summary: 'timestamps differ in PKG-INFO', builders: [sha('a'), sha('b')], files: ['dist/app.whl'] })).toBe('accepted')
    expect(problem('revoke', {})).toBe('accepted')
  })

  it('says which field is wrong and how', () => {
    expect(problem('claim', { job: 'x', platform: 'linux-x64', lease: 1 })).toBe('job must be an entry id (64 lower-case hex digits)')
    expect(problem('claim', { job: JOB, platform: 'linux-x64+debian-12', lease: 1 })).toBe('platform must list its labels sorted and once each, joined by "+" ("debian-12+linux-x64")')
    expect(problem('claim', { job: JOB, platform: 'linux-x64', lease: 1.5 })).toBe('lease must be an integer')
    expect(problem('result', resultBody(JOB, { status: 'maybe' as 'pass' }))).toBe('status must be one of "pass", "fail", "timeout", "error", "refused"')
    expect(problem('result', resultBody(JOB, { steps: [{ name: 'build', exit: 1.5, ms: 1 }] }))).toBe('steps[0].exit must be an integer')
    expect(problem('result', resultBody(JOB, { steps: [{ name: 'build', exit: 0, ms: -1 }] }))).toBe('steps[0].ms must be at least 0')
    expect(problem('result', resultBody(JOB, { artifacts: [artifact('b', 'x'), artifact('a', 'y')] }))).toBe('artifacts[1].path must be sorted by path with no path twice')
    expect(problem('result', resultBody(JOB, { artifacts: [artifact('a', 'x'), artifact('a', 'y')] }))).toBe('artifacts[1].path must be sorted by path with no path twice')
    expect(problem('result', resultBody(JOB, { artifacts: [artifact('../x', 'x')] }))).toBe('artifacts[0].path must not contain ".." segments')
    expect(problem('result', resultBody(JOB, { start: 5, end: 4 }))).toBe('end must not be before start')
    expect(problem('result', resultBody(JOB, { log: null }))).toBe('logSize must be 0 when there is no log')
    expect(problem('result', { ...resultBody(JOB), extra: 1 })).toBe('unknown field "extra"')
    expect(problem('result', resultBody(JOB, { artifacts: Array.from({ length: 257 }, (_, i) => artifact(`f${String(i).padStart(3, '0')}`, 'x')) }))).toBe('artifacts must have at most 256 items')
    const tools = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`t${i}`, '1']))
    expect(problem('result', resultBody(JOB, { env: { ...resultBody(JOB).env, tools } }))).toBe('env.tools must have at most 32 entries, got 33')
    expect(problem('job', jobBody({ platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 8 }] }))).toBe('platforms[0].replicas must be at most 7')
    expect(problem('job', jobBody({ platforms: [{ selector: 'linux-x64', labels: ['linux-arm64'], replicas: 2 }] }))).toBe('platforms[0].labels must be the selector\'s labels, sorted and once each (["linux-x64"])')
    expect(problem('job', jobBody({ timeout: 0 }))).toBe('timeout must be at least 1')
    expect(problem('diagnosis', { job: JOB, platform: 'linux-x64', report: sha('r'), summary: 's', builders: [sha('a'), sha('a')], files: [] })).toBe('builders[1] repeats the builder "' + sha('a') + '"')
  })

  it('refs: claims, results, cancels and diagnoses refer to their job; the codec rejects bad bodies', () => {
    const world = new World()
    const alice = world.author()
    const job = alice.job()
    expect(jobEntryRules.job!.refs).toBeUndefined()
    for (const e of [alice.claim(job), alice.result(job), alice.cancel(job)]) {
      expect(jobEntryRules[e.entry.type]!.refs!(e.entry.body)).toEqual([job.id])
    }
    expect(() => alice.write('result', { ...resultBody(job.id), status: 'ok' })).toThrow(/^result body: status must be one of/)
  })
})
