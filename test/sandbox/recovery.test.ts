import { spawn } from 'node:child_process'
import { existsSync, readlinkSync } from 'node:fs'
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/util/wait.js'
import { useTeardown } from '../helpers/temp-home.js'
import { bubblewrap } from './helpers.js'

const teardown = useTeardown()

/** A pid no process can have (past the kernel's pid_max): the node that left the group is surely gone. */
async function deadPid (): Promise<number> {
  return Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim()) + 1
}

describe('after a node crashed', () => {
  it('the next node clears the cgroups it left (killing what is still in them) and its staged workspaces', async (context) => {
    const executor = await bubblewrap()
    if ((await executor.fingerprint()).limits !== 'cgroup-v1' || process.getuid?.() !== 0) {
      console.log('skipped: needs a root node with cgroup v1 (as in CI) to plant a stale group')
      context.skip()
    }
    const own = (await readFile('/proc/self/cgroup', 'utf8')).split('\n').find((line) => line.split(':')[1] === 'pids')!.split(':')[2]!
    const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]!
    const tag = `${await deadPid()}-${namespace}-planted`
    const group = join('/sys/fs/cgroup/pids', own, `buildhaus-${tag}`)
    const staged = join('/var/tmp/buildhaus-sandbox', `run-${tag}`)
    await mkdir(group)
    teardown(async () => { await rmdir(group).catch(() => {}) })
    await mkdir(staged, { recursive: true })
    await writeFile(join(staged, 'left-behind'), 'x')
    // What a bwrap killed mid-set-up leaves: a process waiting forever, in the dead node's group.
    const orphan = spawn('sleep', ['1000'], { stdio: 'ignore', detached: true })
    teardown(() => { try { process.kill(orphan.pid!, 'SIGKILL') } catch { /* already dead, as it should be */ } })
    await writeFile(join(group, 'cgroup.procs'), String(orphan.pid))
    const orphanGone = new Promise((resolve) => orphan.once('exit', resolve))

    await bubblewrap()
    await orphanGone
    expect(orphan.signalCode).toBe('SIGKILL')
    await waitFor(() => !existsSync(group), { timeoutMs: 10_000, what: 'the stale group to be removed' })
    expect(existsSync(staged)).toBe(false)
  })
})
