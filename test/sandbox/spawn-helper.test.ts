import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Readable, Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { SpawnHelper } from '../../src/sandbox/spawn-helper.js'
import { StepProcess, type StepChild } from '../../src/sandbox/step-process.js'
import { waitFor } from '../../src/util/wait.js'
import { processesWith } from './processes.js'

const helper = new SpawnHelper()

afterAll(() => { helper.close() })

const ENV = { PATH: '/usr/bin:/bin', LANG: 'C' }

function collect (stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { text += chunk })
    stream.once('close', () => { resolve(text) })
  })
}

function exitOf (child: StepChild): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
}

async function childrenOf (pid: number): Promise<number[]> {
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return children.split(' ').filter((c) => c.trim() !== '').map(Number)
}

/** The spawn helpers this process runs. */
async function helperPids (): Promise<number[]> {
  const found: number[] = []
  for (const pid of await childrenOf(process.pid)) {
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('spawn-helper-main')) found.push(pid)
  }
  return found
}

async function isRunning (pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat !== undefined && !/^\S+ \(.*\) [ZX]/.test(stat)
}

describe('the spawn helper', () => {
  it('starts a process whose pipes the node reads and writes directly, losing no byte written at once, and reports its exit', async () => {
    const child = helper.spawn('/bin/sh', ['-c', 'printf . >&3; echo early; read line; echo "got $line"; printf "%s" "$PWD" >&4; exit 7'], {
      cwd: '/tmp', env: ENV, stdio: ['pipe', 'pipe', 'ignore', 'pipe', 'pipe']
    })
    const output = collect(child.stdout!)
    const marker = collect(child.stdio[3] as Readable)
    const info = collect(child.stdio[4] as Readable)
    const exit = exitOf(child)
    const spawned = await child.whenSpawned
    expect(spawned?.pid).toBe(child.pid)
    expect(spawned?.startTime).toBeGreaterThan(0)
    // Written only once the process has printed: its first bytes were in the pipes before their sockets came over.
    await new Promise((resolve) => setTimeout(resolve, 100))
    ;(child.stdin as Writable).end('hello\n')
    expect(await exit).toEqual({ code: 7, signal: null })
    expect(await output).toBe('early\ngot hello\n')
    expect(await marker).toBe('.')
    expect(await info).toBe('/tmp')
    expect(child.exitCode).toBe(7)
  })

  it('gives stderr a pipe of its own when asked, apart from stdout, and /dev/null otherwise', async () => {
    const script = 'echo out; echo err >&2; readlink /proc/self/fd/2 >&3'
    const piped = helper.spawn('/bin/sh', ['-c', script], { cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'ignore'] })
    const [out, err, fd2] = [collect(piped.stdout!), collect(piped.stdio[2] as Readable), collect(piped.stdio[3] as Readable)]
    expect(await exitOf(piped)).toEqual({ code: 0, signal: null })
    expect([await out, await err]).toEqual(['out\n', 'err\n'])
    expect(await fd2).toMatch(/^socket:/)

    const ignored = helper.spawn('/bin/sh', ['-c', script], { cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'ignore', 'pipe', 'ignore'] })
    const [quiet, where] = [collect(ignored.stdout!), collect(ignored.stdio[3] as Readable)]
    expect(await exitOf(ignored)).toEqual({ code: 0, signal: null })
    expect(ignored.stdio[2]).toBeNull()
    expect([await quiet, await where]).toEqual(['out\n', '/dev/null\n'])
  })

  it('kills through the helper, and says a process that cannot start failed', async () => {
    const child = helper.spawn('/bin/sleep', ['30'], { cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'ignore', 'ignore', 'ignore'] })
    const exit = exitOf(child)
    await child.whenSpawned
    expect(child.kill('SIGKILL')).toBe(true)
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' })
    expect(child.kill('SIGKILL')).toBe(false)

    const missing = helper.spawn('/nonexistent/tool', [], { cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'ignore', 'pipe', 'ignore'] })
    const failure = new Promise<Error>((resolve) => { missing.once('error', resolve) })
    expect((await failure as NodeJS.ErrnoException).code).toBe('ENOENT')
    expect(await missing.whenSpawned).toBeUndefined()
    expect(await collect(missing.stdout!)).toBe('')
  })

  it('closes the stdin of a process whose input was destroyed before its socket came', async () => {
    const child = helper.spawn('/bin/cat', [], { cwd: '/', env: ENV, stdio: ['pipe', 'pipe', 'ignore', 'ignore', 'ignore'] })
    const output = collect(child.stdout!)
    ;(child.stdin as Writable).destroy()
    expect(await exitOf(child)).toEqual({ code: 0, signal: null })
    expect(await output).toBe('')
  })

  it('kills a step and its processes by pid and start time once the helper has said which they are', async () => {
    const step = new StepProcess(['/bin/sh', '-c', 'printf . >&3; sleep 30 & sleep 30'], {
      cwd: '/', env: ENV, spawn: helper.spawn.bind(helper)
    })
    expect(await step.started).toBe(true)
    const pid = step.pid!
    // The step's shell and its two sleeps.
    await waitFor(async () => (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(' ').length === 2, { timeoutMs: 5_000, intervalMs: 10, what: 'the two sleeps' })
    const sleeps = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(' ').map(Number)
    expect(await step.kill()).toBe(true)
    expect((await step.exited).signal).toBe('SIGKILL')
    for (const sleep of sleeps) expect(await isRunning(sleep)).toBe(false)
  })

  it('kills and reports the processes of a helper that died, and starts another for the next spawn', async () => {
    const child = helper.spawn('/bin/sleep', ['30'], { cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'ignore', 'pipe', 'ignore'] })
    const exit = exitOf(child)
    const { pid } = (await child.whenSpawned)!
    const [dying] = await helperPids()
    process.kill(dying!, 'SIGKILL')
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' })
    await waitFor(async () => !await isRunning(pid), { timeoutMs: 5_000, intervalMs: 10, what: 'the orphan killed' })

    const next = helper.spawn('/bin/echo', ['again'], { cwd: '/', env: ENV, stdio: ['ignore', 'pipe', 'ignore', 'ignore', 'ignore'] })
    const output = collect(next.stdout!)
    expect(await exitOf(next)).toEqual({ code: 0, signal: null })
    expect(await output).toBe('again\n')
    expect(await helperPids()).not.toContain(dying)
  })

  it('goes, with its processes, when the node dies before taking the sockets it was sent', async () => {
    // A node (the compiled code, in a process of its own) that asks for a step and then never turns its event
    // loop again: it never acknowledges the step's sockets, and Node holds the helper's 'disconnect' back until
    // it does. The node is then killed; nothing it started may stay behind.
    const token = `orphan-${randomBytes(6).toString('hex')}`
    const compiled = fileURLToPath(new URL('../../dist/src/sandbox/spawn-helper.js', import.meta.url))
    const script = [
      `import { SpawnHelper } from ${JSON.stringify(compiled)}`,
      `new SpawnHelper().spawn('/bin/sh', ['-c', 'sleep 60; true', '${token}'], { cwd: '/', env: { PATH: '/usr/bin:/bin' }, stdio: ['pipe', 'pipe', 'ignore', 'pipe', 'ignore'] })`,
      'setImmediate(() => { for (;;) {} })'
    ].join('\n')
    const node = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' })
    const gone = new Promise((resolve) => node.once('exit', resolve))
    try {
      // The node's one child is the helper; the helper's, the step (the node's script names the token too).
      const [helper] = await waitFor(async () => {
        const helpers = await childrenOf(node.pid!)
        return helpers.length === 1 && (await childrenOf(helpers[0]!)).length > 0 ? helpers : undefined
      }, { timeoutMs: 15_000, intervalMs: 20, what: 'the helper to start the step' })
      node.kill('SIGKILL')
      await gone
      await waitFor(async () => !await isRunning(helper!) && (await processesWith(token)).length === 0, {
        timeoutMs: 10_000, intervalMs: 50, what: 'the orphaned helper and its step to end'
      })
    } finally {
      node.kill('SIGKILL')
      for (const pid of await processesWith(token)) process.kill(pid, 'SIGKILL')
    }
  })

  it('takes the whole tree of its processes along when closed, even those in sessions of their own', async () => {
    // bwrap's sandboxed child runs in a session of its own (--new-session): killing bwrap's group misses it, and a
    // bwrap killed while it sets the sandbox up leaves that child blocked for ever (its parent-death signal was
    // cleared when it changed credentials). Seen after a node was SIGKILLed: a warm spare's child, ppid 1, for good.
    const own = new SpawnHelper()
    const suffix = randomBytes(6).toString('hex')
    const token = `tree-${suffix}`
    // Two shells in sessions of their own, each waiting on a sleep of its own group. The token is put together
    // at run time, so that only those two shells carry it on their command lines.
    const script = `t=tree-; t="$t"${suffix}; for i in 1 2; do setsid /bin/sh -c '/bin/sleep 600; exit' "$t" & done; wait`
    const child = own.spawn('/bin/sh', ['-c', script], { cwd: '/', env: ENV, stdio: ['ignore', 'ignore', 'ignore', 'ignore', 'ignore'] })
    let tree: number[] = []
    try {
      await waitFor(async () => {
        const shells = await processesWith(token)
        const sleeps = (await Promise.all(shells.map(childrenOf))).flat()
        tree = [...shells, ...sleeps]
        return shells.length === 2 && sleeps.length === 2
      }, { timeoutMs: 5_000, intervalMs: 20, what: 'two shells in sessions of their own, each with its sleep' })
      own.close()
      await exitOf(child)
      await waitFor(async () => (await Promise.all(tree.map(isRunning))).every((running) => !running), { timeoutMs: 5_000, intervalMs: 20, what: 'the shells and their sleeps to be killed with the helper' })
    } finally {
      own.close()
      for (const pid of tree) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    }
  })

  it('leaves no helper running once closed', async () => {
    const child = helper.spawn('/bin/true', [], { cwd: '/', env: ENV, stdio: ['ignore', 'ignore', 'ignore', 'ignore', 'ignore'] })
    await exitOf(child)
    expect(await helperPids()).toHaveLength(1)
    helper.close()
    await waitFor(async () => (await helperPids()).length === 0, { timeoutMs: 5_000, intervalMs: 20, what: 'the helper to exit' })
  })
})
