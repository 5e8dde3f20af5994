import { randomBytes } from 'node:crypto'
import { getPriority } from 'node:os'
import { describe, expect, it } from 'vitest'
import { SYSTEM_PATH } from '../../src/sandbox/host.js'
import { runHostCommand, startHostProcess } from '../../src/sandbox/host-process.js'
import { BUILD_NICE } from '../../src/sandbox/spawn-helper.js'
import { waitFor } from '../../src/util/wait.js'
import { processesWith } from './processes.js'

const ENV = { PATH: SYSTEM_PATH, LANG: 'C' }

/** The node's processes outside a step (src/sandbox/host-process.ts), through its shared spawn helper. */
describe('processes the node starts outside a sandbox', () => {
  it('take their input and give their output and exit', async () => {
    const result = await runHostCommand('/bin/sh', ['-c', 'cat; echo oops >&2; exit 3'], { env: ENV, input: 'hello\n', timeoutMs: 30_000 })
    expect(result).toMatchObject({ code: 3, signal: null, stdout: 'hello\n', stderr: 'oops\n', timedOut: false, truncated: false })
  })

  it('keep only the output asked for, and read the rest', async () => {
    const result = await runHostCommand('/bin/sh', ['-c', 'head -c 100000 /dev/zero'], { env: ENV, timeoutMs: 30_000, maxOutputBytes: 1000 })
    expect(result.code).toBe(0)
    expect(result.stdout.length).toBe(1000)
    expect(result.truncated).toBe(true)
  })

  it('run at the builds\' lower CPU priority (git, gpgv, mmdebstrap, diffoscope are work for builds), leaving the node\'s own', async () => {
    const result = await runHostCommand('/bin/sh', ['-c', 'cut -d" " -f19 /proc/self/stat'], { env: ENV, timeoutMs: 30_000 })
    expect(result.stdout.trim()).toBe(String(Math.min(19, getPriority() + BUILD_NICE)))
  })

  it('say why one cannot start', async () => {
    const child = startHostProcess('buildhaus-no-such-tool', [], { env: ENV })
    await expect(child.closed).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await child.started).toBeUndefined()
  })

  it('are killed whole, their process group, past their time', async () => {
    // Both sleeps carry the token in their command line (a fraction of a second GNU sleep accepts).
    const token = `1000.${randomBytes(4).readUInt32BE()}`
    const result = await runHostCommand('/bin/sh', ['-c', `sleep ${token} & exec sleep ${token}`], { env: ENV, timeoutMs: 500 })
    expect(result.timedOut).toBe(true)
    expect(result.signal).toBe('SIGKILL')
    await waitFor(async () => (await processesWith(token)).length === 0, { timeoutMs: 10_000, what: 'the process group to be gone' })
  })
})
