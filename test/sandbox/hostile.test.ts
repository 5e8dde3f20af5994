import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Executor } from '../../src/sandbox/index.js'
import { waitFor } from '../../src/util/wait.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, step } from './helpers.js'
import { processesWith } from './processes.js'
import { openLedgerFiles } from '../helpers/open-ledger.js'

const teardown = useTeardown()
let executor: Executor

beforeAll(async () => {
  executor = await bubblewrap()
})

/** A TCP listener on 127.0.0.1 that counts the connections it accepts. */
async function listener (): Promise<{ port: number, connections: () => number, server: Server }> {
  let count = 0
  const server = createServer((socket) => {
    count++
    socket.end('hello from the host\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { port: address.port, connections: () => count, server }
}

describe('hostile jobs under bubblewrap', () => {
  it('cannot reach a listener on the host\'s loopback without network, and can with it', async () => {
    const work = await tempDir(teardown)
    const { port, connections } = await listener()
    // Quotes split the marker so the log's "$ <run>" header does not contain it.
    const connect = `exec 3<>/dev/tcp/127.0.0.1/${port} && echo CON""NECTED && cat <&3`
    const closed = await runJob(executor, teardown, work, { ...step(`bash -c '${connect}'`) })
    expect(closed.status).toBe('fail')
    expect(logText(closed)).not.toContain('CONNECTED')
    expect(connections()).toBe(0)

    const open = await runJob(executor, teardown, work, { ...step(`bash -c '${connect}'`), network: true })
    expect(open.status, logText(open)).toBe('pass')
    expect(logText(open)).toContain('hello from the host')
    await waitFor(() => connections() === 1, { timeoutMs: 10_000, what: 'the sandbox\'s connection' })
  })

  it('cannot write outside its workspace', async () => {
    const work = await tempDir(teardown)
    const marker = `pwned-${randomBytes(6).toString('hex')}`
    const targets = [
      `/usr/${marker}`, `/usr/bin/${marker}`, `/etc/${marker}`, `/${marker}`, `/dev/${marker}`, `../${marker}`,
      join(work, marker), `/var/tmp/buildhaus-sandbox/${marker}`, `/var/tmp/${marker}`
    ]
    const script = targets.map((target) => `(mkdir -p "$(dirname "${target}")"; echo x > "${target}") 2>/dev/null && echo "WROTE ${target}" || echo "DENIED ${target}"`).join('\n')
    const outcome = await runJob(executor, teardown, work, { ...step(script) })
    expect(outcome.status).toBe('pass')
    const text = logText(outcome)
    for (const target of [`/usr/${marker}`, `/usr/bin/${marker}`, `/etc/${marker}`, `/${marker}`, `/dev/${marker}`, `../${marker}`]) {
      expect(text).toContain(`DENIED ${target}`)
    }
    // Host paths: none of the writes may have landed (writes into the sandbox's private /tmp vanish with it).
    for (const target of [`/usr/${marker}`, `/usr/bin/${marker}`, `/etc/${marker}`, `/${marker}`, join(work, marker), `/var/tmp/buildhaus-sandbox/${marker}`, `/var/tmp/${marker}`]) {
      expect(existsSync(target), target).toBe(false)
    }
    expect(existsSync(join(work, '..', marker))).toBe(false)
  })

  it('cannot read the node\'s key, environment or home', async () => {
    const home = await tempDir(teardown, 'buildhaus-home-')
    const secret = `SECRET-${randomBytes(16).toString('hex')}`
    await writeFile(join(home, 'key.pem'), `-----BEGIN PRIVATE KEY-----\n${secret}\n-----END PRIVATE KEY-----\n`, { mode: 0o600 })
    const work = join(home, 'work')
    await mkdir(work)
    process.env.BUILDHAUS_TEST_SECRET = secret
    teardown(() => { delete process.env.BUILDHAUS_TEST_SECRET })
    const script = [
      `cat ${home}/key.pem`,
      'cat ../key.pem ../../key.pem ../../../key.pem',
      `cat /proc/1/root${home}/key.pem /proc/self/root${home}/key.pem`,
      'find / -xdev -name key.pem 2>/dev/null',
      'find / \\( -path /usr -o -path /proc \\) -prune -o -name key.pem -exec cp {} /build/ \\; 2>/dev/null',
      `cp ${home}/key.pem /build/stolen.pem`,
      'env; cat /proc/*/environ | tr "\\0" "\\n"',
      'grep -rs SECRET /build /tmp /etc /dev/shm',
      'true'
    ].join('; ')
    const outcome = await runJob(executor, teardown, work, { ...step(script), artifacts: ['**'] })
    expect(outcome.status).toBe('pass')
    expect(logText(outcome)).not.toContain(secret)
    for (const artifact of outcome.artifacts) {
      expect((await readFile(artifact.file, 'utf8')).includes(secret), artifact.path).toBe(false)
    }
  })

  it('cannot write into the node\'s open files (its ledger) through descriptors it would inherit', async () => {
    // LevelDB opens its files without close-on-exec: any process the node (or its spawn helper) starts
    // inherits them unless something closes them. A fresh executor, so its helper starts after the open.
    const home = await tempDir(teardown, 'buildhaus-home-')
    const ledger = await openLedgerFiles(teardown, join(home, 'ledger'))
    const fresh = await bubblewrap()
    teardown(async () => { await fresh.close?.() })
    // Every descriptor the step's shell holds beyond stdio, and a write into each. (A test with `[`, a builtin,
    // opens nothing; the write is an external echo, so the shell saves no stdout of its own at fd 10.)
    const script = 'for n in $(seq 3 1023); do [ -e /proc/$$/fd/$n ] || continue; echo "HELD $n $(readlink /proc/$$/fd/$n)"; eval "/bin/echo pwned >&$n" 2>/dev/null && echo "WROTE $n"; done; true'
    const outcome = await runJob(fresh, teardown, join(home, 'work'), { ...step(`bash -c '${script}'`) })
    expect(outcome.status, logText(outcome)).toBe('pass')
    expect(logText(outcome)).not.toMatch(/^(HELD|WROTE) /m)
    expect(await ledger.intact()).toBe(true)
  })

  it('ends a fork bomb with the process limit, and the node keeps working', async () => {
    const work = await tempDir(teardown)
    const token = `bomb-${randomBytes(6).toString('hex')}`
    // The job's first process never forks again once the bomb is away (dash exits when a fork fails).
    const outcome = await runJob(executor, teardown, work, {
      ...step(`bomb() { bomb | bomb & }; bomb & exec sleep 1000 # ${token}`),
      limits: { processes: 64, wallSeconds: 10 }
    })
    if ((await executor.fingerprint()).limits === 'rlimits') {
      // No pids cgroup (a node not running as root): RLIMIT_NPROC holds the bomb, which dies out
      // faster than the monitor may see it at the limit; then the job sleeps until its wall time.
      expect(['error', 'timeout']).toContain(outcome.status)
      if (outcome.status === 'error') expect(outcome.reason).toBe('process limit (64)')
    } else {
      // The first fork the pids cgroup refuses ends the run.
      expect(outcome.status).toBe('error')
      expect(outcome.reason).toBe('process limit (64)')
      expect(logText(outcome)).toContain('[buildhaus: run ended: process limit (64)]')
    }
    expect(await processesWith(token)).toEqual([])
    // The node (this process) can still fork and build.
    const after = await runJob(executor, teardown, work, { ...step('echo still here') })
    expect(after.status).toBe('pass')
  })

  it('ends a job allocating far beyond the memory limit', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('perl -e \'$x = "x" x (2 * 1024 * 1024 * 1024); print length($x), "\\n"\''),
      limits: { memoryMb: 64 }
    })
    if ((await executor.fingerprint()).limits === 'rlimits') {
      // No memory cgroup (a node not running as root): the rlimit backstop refuses the allocation itself.
      expect(outcome.status).toBe('fail')
      expect(logText(outcome)).toContain('Out of memory')
      return
    }
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('memory limit (64 MB)')
    expect(logText(outcome)).toContain('[buildhaus: run ended: memory limit (64 MB)]')
  })

  it('ends a job filling the disk beyond the workspace limit', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('i=0; while head -c 1048576 /dev/zero > fill-$i; do i=$((i+1)); sleep 0.01; done'),
      limits: { workspaceMb: 16, fileMb: 8 }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('workspace limit (16 MB)')
  })

  it('catches a workspace filled in one go by a step that is over before the next look', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('for i in 1 2 3 4; do head -c 6000000 /dev/zero > big-$i; done'),
      limits: { workspaceMb: 16, fileMb: 8 }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('workspace limit (16 MB)')
  })

  it('ends a job that fills the disk in one go mid-step after making a large tree, whose walks are spaced out', async () => {
    // Thousands of files make each walk of the workspace slow, so walks come seldom (disk-pace.ts); the fill must
    // still be seen while the step runs (by the file system's growth), not only when its minute of sleep is over.
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('mkdir tree && cd tree && seq 1 9000 | xargs touch && cd .. && sleep 1 && head -c 6000000 /dev/zero > a && head -c 6000000 /dev/zero > b && head -c 6000000 /dev/zero > c && sleep 60'),
      limits: { workspaceMb: 16, fileMb: 8, wallSeconds: 120 }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('workspace limit (16 MB)')
    expect(outcome.steps[0]!.ms).toBeLessThan(60_000)
  })

  it('ends a job writing one file past the file size limit', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, { ...step('head -c 20000000 /dev/zero > big'), limits: { fileMb: 8 } })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('file size limit (8 MB)')
  })

  it('ends a job burning CPU past its limit, counting all its processes', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('(while :; do :; done) & (while :; do :; done) & while :; do :; done'),
      limits: { cpuSeconds: 1, wallSeconds: 20 }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('cpu time limit (1 s)')
  })

  it('ends a job printing without end, keeping the head and tail of its log', async () => {
    const work = await tempDir(teardown)
    const lines: string[] = []
    const outcome = await runJob(executor, teardown, work, {
      ...step('echo FIRST-LINE; yes "flood flood flood"'),
      limits: { outputMb: 1, logKb: 16 },
      onLog: (text) => { lines.push(text) }
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('output limit (1 MB)')
    expect(outcome.logTruncated).toBe(true)
    const text = logText(outcome)
    expect(outcome.log.length).toBeLessThan(17 * 1024)
    expect(text.startsWith('$ echo FIRST-LINE; yes')).toBe(true)
    expect(text).toContain('FIRST-LINE')
    expect(text).toMatch(/\[… \d+ bytes truncated …\]/)
    expect(text.trimEnd().endsWith('[buildhaus: run ended: output limit (1 MB)]')).toBe(true)
    // The live log saw the whole output up to the limit.
    expect(lines.join('').length).toBeGreaterThanOrEqual(1024 * 1024)
  })

  it('times out a job sleeping forever and kills all of it', async () => {
    const work = await tempDir(teardown)
    const token = `sleeper-${randomBytes(6).toString('hex')}`
    const outcome = await runJob(executor, teardown, work, {
      ...step(`sh -c 'sleep 1000; : ${token}' & sleep 1000`),
      limits: { wallSeconds: 2 }
    })
    expect(outcome.status).toBe('timeout')
    expect(outcome.reason).toBe('wall time limit (2 s)')
    expect(outcome.steps[0]!.signal).toBe('SIGKILL')
    expect(await processesWith(token)).toEqual([])
  })

  it('leaves no double-forked daemon behind once the job is over', async () => {
    const work = await tempDir(teardown)
    const token = `daemon-${randomBytes(6).toString('hex')}`
    const daemon = `setsid sh -c 'echo up > /build/daemon-up; while :; do date > /build/heartbeat; sleep 0.1; done; : ${token}' </dev/null >/dev/null 2>&1`
    const outcome = await runJob(executor, teardown, work, {
      ...step(`( ${daemon} & ); while [ ! -f /build/daemon-up ]; do sleep 0.05; done; echo daemon started`),
      artifacts: ['daemon-up']
    })
    expect(outcome.status).toBe('pass')
    expect(logText(outcome)).toContain('daemon started')
    expect(outcome.artifacts.map((a) => a.path)).toEqual(['daemon-up'])
    // The daemon's command line holds the token: no process on the host has it once run() returned.
    expect(await processesWith(token)).toEqual([])
  })

  it('cannot raise its limits, see host processes or make user namespaces', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step([
        'ulimit -H -n 1000000 2>/dev/null && echo RAISED-""NOFILE || echo nofile-stays',
        'ls /proc | grep -c "^[0-9]" ',
        'unshare -U true 2>/dev/null && echo NESTED-""USERNS || echo userns-denied',
        'cat /proc/self/status | grep CapEff'
      ].join('; '))
    })
    const text = logText(outcome)
    expect(text).toContain('nofile-stays')
    expect(text).toContain('CapEff:\t0000000000000000')
    expect(text).not.toContain('NESTED-USERNS')
    expect(text).not.toContain('RAISED-NOFILE')
    // Only the sandbox's own processes are visible (bwrap's init, sh, ls, grep…).
    const visible = Number(/^(\d+)$/m.exec(text)?.[1])
    expect(visible).toBeLessThan(10)
  })
})
