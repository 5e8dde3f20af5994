import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/util/wait.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, step } from './helpers.js'

/** The processes this test process started directly: spawn helpers, and bwrap of sandboxes it forked itself. */
async function childCommands (): Promise<string[]> {
  const children = await readFile(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').catch(() => '')
  const commands: string[] = []
  for (const pid of children.split(' ').filter((c) => c !== '').map(Number)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmdline !== '') commands.push(cmdline.replace(/\0/g, ' ').trim())
  }
  return commands
}

/** The executor's helpers (not the node's shared one for other processes, src/sandbox/host-process.ts, named `host`). */
const helpers = async (): Promise<number> => (await childCommands()).filter((c) => c.includes('spawn-helper-main') && !c.endsWith(' host')).length

describe('an idle bubblewrap executor', () => {
  const teardown = useTeardown()

  it('lets its spare run and its spawn helper go after an idle spell, and builds again from scratch when a job comes', async () => {
    const executor = await bubblewrap({ idleReleaseMs: 400 })
    teardown(async () => { await executor.close?.() })
    const workRoot = await tempDir(teardown, 'buildhaus-idle-')
    const first = await runJob(executor, teardown, workRoot, step('echo first'))
    expect(first.status).toBe('pass')
    // After the run: a spare for the next one, its warm step started by the helper.
    expect(await helpers()).toBe(1)
    // Idle: no helper, and no sandbox process left behind for a spare.
    await waitFor(async () => await helpers() === 0, { timeoutMs: 10_000, intervalMs: 50, what: 'the idle executor to stop its spawn helper' })
    expect((await childCommands()).filter((c) => c.includes('bwrap'))).toEqual([])
    const second = await runJob(executor, teardown, workRoot, step('echo second'))
    expect(second.status).toBe('pass')
    expect(logText(second)).toContain('second')
    expect(await helpers()).toBe(1)
  })
})
