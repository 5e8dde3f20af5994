import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createExecutor, UNSANDBOXED_WARNING } from '../../src/sandbox/index.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { logText, runJob, source, step } from './helpers.js'
import { processesWith } from './processes.js'

const teardown = useTeardown()

describe('the none executor (--sandbox=none)', () => {
  it('warns loudly in its fingerprint', async () => {
    const executor = await createExecutor('none')
    expect(executor.kind).toBe('none')
    const env = await executor.fingerprint()
    expect(env.sandbox).toBe('none')
    expect(env.warning).toBe(UNSANDBOXED_WARNING)
  })

  it('runs steps in the unpacked source with a clean environment', async () => {
    const executor = await createExecutor('none', { pollMs: 100 })
    const work = await tempDir(teardown)
    process.env.BUILDHAUS_TEST_LEAK = 'leaked-value'
    teardown(() => { delete process.env.BUILDHAUS_TEST_LEAK })
    const outcome = await runJob(executor, teardown, work, {
      source: await source(teardown, { 'in.txt': 'input\n' }),
      steps: [{ name: 'copy', run: 'cp in.txt out.txt && env' }, { name: 'fail', run: 'exit 7' }],
      artifacts: ['out.txt'],
      sourceDateEpoch: 42
    })
    expect(outcome.status).toBe('fail')
    expect(outcome.steps.map((s) => s.exit)).toEqual([0, 7])
    expect(outcome.artifacts.map((a) => a.path)).toEqual(['out.txt'])
    expect(logText(outcome)).toContain('SOURCE_DATE_EPOCH=42')
    expect(logText(outcome)).not.toContain('leaked-value')
  })

  it('kills what a step left behind in its process group', async () => {
    const executor = await createExecutor('none', { pollMs: 100 })
    const work = await tempDir(teardown)
    const token = `orphan-${randomBytes(6).toString('hex')}`
    const outcome = await runJob(executor, teardown, work, {
      ...step(`( sh -c 'touch up; while :; do sleep 0.1; done # ${token}' </dev/null >/dev/null 2>&1 & ); while [ ! -f up ]; do sleep 0.05; done`)
    })
    expect(outcome.status).toBe('pass')
    expect(await processesWith(token)).toEqual([])
  })

  it('still enforces wall time and output limits', async () => {
    const executor = await createExecutor('none', { pollMs: 100 })
    const work = await tempDir(teardown)
    const slow = await runJob(executor, teardown, work, { ...step('sleep 100'), limits: { wallSeconds: 1 } })
    expect(slow.status).toBe('timeout')
    expect(slow.reason).toBe('wall time limit (1 s)')
    const loud = await runJob(executor, teardown, work, { ...step('yes'), limits: { outputMb: 1 } })
    expect(loud.status).toBe('error')
    expect(loud.reason).toBe('output limit (1 MB)')
  })
})
