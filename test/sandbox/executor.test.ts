import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { getPriority } from 'node:os'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Executor } from '../../src/sandbox/index.js'
import { findTool } from '../../src/sandbox/host.js'
import { BUILD_NICE } from '../../src/sandbox/spawn-helper.js'
import { waitFor } from '../../src/util/wait.js'
import { makeTarGz, file } from '../archive/hostile-tarballs.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, source, step } from './helpers.js'

const teardown = useTeardown()
let executor: Executor

beforeAll(async () => {
  executor = await bubblewrap()
})

const HELLO_C = `#include <stdio.h>
int main(void) { printf("hello from %s\\n", __FILE__); return 0; }
`

describe('the bubblewrap executor', () => {
  it('describes its environment', async () => {
    const env = await executor.fingerprint()
    expect(env.sandbox).toBe('bubblewrap')
    expect(env.bwrap).toMatch(/^bubblewrap \d/)
    expect(env.kernel).not.toBe('')
    expect(env.tools.sh).toBeDefined()
    expect(env.warning).toBeUndefined()
  })

  it('keeps the next run\'s workspace ready while a run builds, and removes it on close; runs still work after', async () => {
    const own = await bubblewrap()
    const work = await tempDir(teardown)
    const first = await runJob(own, teardown, work, step('true'))
    expect(first.status).toBe('pass')
    await first.dispose()
    // The run took the spare made when the work root was first used; another is ready for the next run.
    await waitFor(async () => (await readdir(work)).length === 1, { timeoutMs: 10_000, intervalMs: 20, what: 'one spare workspace' })
    const spare = (await readdir(work))[0]
    const second = await runJob(own, teardown, work, step('pwd'))
    expect(logText(second)).toContain('/build\n')
    await second.dispose()
    expect(await readdir(work)).not.toContain(spare)
    await own.close!()
    expect(await readdir(work)).toEqual([])
    const after = await runJob(own, teardown, work, step('true'))
    expect(after.status).toBe('pass')
    await after.dispose()
    expect(await readdir(work)).toEqual([])
  })

  it('runs steps in order in the unpacked source, logging a header and a trailer for each', async () => {
    const work = await tempDir(teardown)
    const live: string[] = []
    const outcome = await runJob(executor, teardown, work, {
      source: await source(teardown, { 'greeting.txt': 'hello\n', 'sub/data.txt': 'data\n' }),
      steps: [
        { name: 'show', run: 'cat greeting.txt sub/data.txt; pwd' },
        { name: 'write', run: 'echo out > result.txt; echo to-stderr >&2; echo to-stdout' }
      ],
      artifacts: ['*.txt'],
      onLog: (text) => { live.push(text) }
    })
    expect(outcome.status).toBe('pass')
    expect(outcome.reason).toBeUndefined()
    expect(outcome.steps.map((s) => [s.name, s.exit])).toEqual([['show', 0], ['write', 0]])
    const text = logText(outcome)
    expect(text).toMatch(/^\$ cat greeting.txt sub\/data.txt; pwd\nhello\ndata\n\/build\n\[step show: exit 0, \d+ ms\]\n\$ echo out/)
    expect(text).toContain('to-stderr\nto-stdout\n[step write: exit 0,')
    expect(live.join('')).toBe(text)
    expect(outcome.logTruncated).toBe(false)
    expect(outcome.end).toBeGreaterThanOrEqual(outcome.start)
    expect(outcome.artifacts.map((a) => a.path)).toEqual(['greeting.txt', 'result.txt'])
  })

  it('stops at the first failing step, and still collects artifacts', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      steps: [
        { name: 'make-log', run: 'echo details > build.log' },
        { name: 'break', run: 'exit 3' },
        { name: 'never', run: 'touch never-ran' }
      ],
      artifacts: ['*.log', 'never-ran']
    })
    expect(outcome.status).toBe('fail')
    expect(outcome.reason).toBeUndefined()
    expect(outcome.steps.map((s) => [s.name, s.exit])).toEqual([['make-log', 0], ['break', 3]])
    expect(outcome.artifacts.map((a) => a.path)).toEqual(['build.log'])
  })

  it('collects artifacts sorted, hashed and copied out, never through symlinks, and disposes of them', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('mkdir -p dist/b dist/a && echo one > dist/b/z.bin && echo two > dist/a/y.bin && echo three > dist/x.bin && ln -s /etc/passwd dist/passwd.bin && ln -s ../dist dist/loop && echo skip > other.bin'),
      artifacts: ['dist/**']
    })
    expect(outcome.status).toBe('pass')
    expect(outcome.artifacts.map((a) => a.path)).toEqual(['dist/a/y.bin', 'dist/b/z.bin', 'dist/x.bin'])
    for (const artifact of outcome.artifacts) {
      const content = await readFile(artifact.file)
      expect(artifact.size).toBe(content.length)
      expect(artifact.sha256).toBe(createHash('sha256').update(content).digest('hex'))
    }
    expect(logText(outcome)).toContain('dist/passwd.bin matches an artifact glob but is a symlink: not collected')
    await outcome.dispose()
    for (const artifact of outcome.artifacts) expect(existsSync(artifact.file)).toBe(false)
  })

  it('runs as uid 0 inside when the job asks for root, and as an unprivileged uid otherwise', async () => {
    const work = await tempDir(teardown)
    const asRoot = await runJob(executor, teardown, work, { ...step('echo "uid=$(id -u) user=$(id -un)"; touch owned'), root: true })
    expect(asRoot.status).toBe('pass')
    expect(logText(asRoot)).toContain('uid=0 user=root')
    const plain = await runJob(executor, teardown, work, { ...step('echo "uid=$(id -u) user=$(id -un)"') })
    expect(plain.status).toBe('pass')
    const uid = Number(/uid=(\d+)/.exec(logText(plain))?.[1])
    expect(uid).toBeGreaterThan(0)
  })

  it('gives steps a clean environment with SOURCE_DATE_EPOCH', async () => {
    const work = await tempDir(teardown)
    process.env.BUILDHAUS_TEST_LEAK = 'leaked-value'
    teardown(() => { delete process.env.BUILDHAUS_TEST_LEAK })
    const outcome = await runJob(executor, teardown, work, { ...step('env | sort'), sourceDateEpoch: 1_700_000_000 })
    const text = logText(outcome)
    expect(text).toContain('SOURCE_DATE_EPOCH=1700000000\n')
    expect(text).toContain('HOME=/tmp\n')
    expect(text).toContain('LANG=C.UTF-8\n')
    expect(text).not.toContain('leaked-value')
  })

  it('builds a small C program reproducibly', async (context) => {
    if (await findTool('cc') === undefined) {
      console.log('skipped: no C compiler (cc) on this machine; CI installs gcc')
      context.skip()
    }
    const work = await tempDir(teardown)
    const job = {
      source: await source(teardown, { 'hello.c': HELLO_C }),
      steps: [{ name: 'compile', run: 'cc -O2 -o hello hello.c' }, { name: 'test', run: './hello | tee hello.out' }],
      artifacts: ['hello', 'hello.out'],
      sourceDateEpoch: 1_700_000_000,
      limits: { memoryMb: 512 }
    }
    const first = await runJob(executor, teardown, work, job)
    expect(first.status, logText(first)).toBe('pass')
    expect(logText(first)).toContain('hello from hello.c')
    const second = await runJob(executor, teardown, work, job)
    expect(second.status).toBe('pass')
    expect(second.artifacts.map((a) => a.path)).toEqual(['hello', 'hello.out'])
    expect(second.artifacts.map((a) => a.sha256)).toEqual(first.artifacts.map((a) => a.sha256))
  })

  // dpkg-buildpackage runs `debian/rules binary` under fakeroot for every package that does not say
  // `Rules-Requires-Root: no`; debhelper then chowns the package's files to root (Debian's tar did so and failed here).
  it('lets fakeroot give files to root for the unprivileged build user, as Debian packages need', async (context) => {
    if (await findTool('fakeroot') === undefined) {
      console.log('skipped: fakeroot is not installed on this machine; CI installs it')
      context.skip()
    }
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      steps: [{ name: 'package', run: 'mkdir -p pkg/usr/share/doc && touch pkg/usr/share/doc/NEWS && fakeroot sh -c \'chown -R 0:0 pkg && stat -c "owner %u:%g" pkg/usr/share/doc/NEWS\'' }]
    })
    expect(outcome.status, logText(outcome)).toBe('pass')
    expect(logText(outcome)).toContain('owner 0:0')
  })

  it('refuses an unsafe source archive with a clear reason and runs nothing', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      source: await makeTarGz([file('../escape.txt', 'x')]),
      ...step('touch ran')
    })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('unsafe source archive (parent-path)')
    expect(outcome.steps).toEqual([])
    expect(logText(outcome)).toContain('../escape.txt')
  })

  it('stops a running job when cancelled', async () => {
    const work = await tempDir(teardown)
    const controller = new AbortController()
    let seen = ''
    const running = runJob(executor, teardown, work, {
      ...step('echo started; sleep 100'),
      signal: controller.signal,
      onLog: (text) => { seen += text }
    })
    await waitFor(() => seen.includes('started\n'), { timeoutMs: 10_000, what: 'the step to start' })
    controller.abort()
    const outcome = await running
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toBe('cancelled')
    expect(outcome.steps[0]!.signal).toBe('SIGKILL')
  })

  it('starts every step with the job\'s rlimits', async () => {
    const work = await tempDir(teardown)
    const outcome = await runJob(executor, teardown, work, {
      ...step('cat /proc/self/limits'),
      limits: { cpuSeconds: 7, fileMb: 3, openFiles: 100 }
    })
    const text = logText(outcome)
    expect(text).toMatch(/Max cpu time\s+7\s+8\s/)
    expect(text).toMatch(/Max file size\s+3145728\s+3145728\s/)
    expect(text).toMatch(/Max open files\s+100\s+100\s/)
    expect(text).toMatch(/Max core file size\s+0\s+0\s/)
  })

  it('runs every step at a lower CPU priority than the node (nice BUILD_NICE), so that a build using every core does not starve the node', async () => {
    const work = await tempDir(teardown)
    // The first step is handed to the warm sandbox, the second launched fresh: both yield. Field 19 of stat is the nice value.
    const outcome = await runJob(executor, teardown, work, {
      steps: [{ name: 'warm', run: 'echo "nice=$(cut -d" " -f19 /proc/self/stat)"' }, { name: 'fresh', run: 'echo "nice=$(cut -d" " -f19 /proc/self/stat)"' }]
    })
    expect(outcome.status).toBe('pass')
    // BUILD_NICE lower than the node's own (this process's), which keeps its own.
    const expected = `nice=${Math.min(19, getPriority() + BUILD_NICE)}`
    expect(logText(outcome).match(/nice=\d+/g)).toEqual([expected, expected])
  })

  it('refuses invalid limits before doing anything', async () => {
    const work = await tempDir(teardown)
    await expect(runJob(executor, teardown, work, { ...step('true'), limits: { memoryMb: 0 } })).rejects.toThrow(/memoryMb must be at least/)
  })
})
