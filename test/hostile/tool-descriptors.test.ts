import { chmod, readdir, readFile, readlink, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import { acquireLock } from '../../src/environments/lock.js'
import { runCommand } from '../../src/environments/command.js'
import { defaultNpmRegistry } from '../../src/node/cli/upstream-defaults.js'
import { createExecutor } from '../../src/sandbox/index.js'
import { probeOutput } from '../../src/sandbox/host.js'
import { runTreeTool } from '../../src/sandbox/tree-walk.js'
import { AddressPolicy } from '../../src/upstream/guard.js'
import { debianUpstream } from '../../src/upstream/sources/debian.js'
import { runGit } from '../../src/upstream/sources/git.js'
import { openLedgerFiles } from '../helpers/open-ledger.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { unsignedArchive } from '../helpers/unsigned-archive.js'
import { logText, runJob, step } from '../sandbox/helpers.js'

/**
 * The node's LevelDB files are open without close-on-exec (LevelDB opens
 * them so, and Node cannot change that): every process the node starts
 * inherits them, open for writing, unless it is started by something that
 * closes them. Steps and diffoscope are; this file holds every other kind of
 * process the node starts to the same rule. Each runs a stand-in executable
 * (where the code path lets the test choose it) that records the descriptors
 * it holds, or is looked at from outside while it runs.
 */

const teardown = useTeardown()
let ledgerDir: string
let bin: string

/** A stand-in tool at `bin/<name>` that lists the descriptors its shell holds into `record`, then exits with `exit`. */
async function standIn (name: string, exit = 0): Promise<{ path: string, record: string }> {
  const record = join(bin, `${name}.fds`)
  const path = join(bin, name)
  await writeFile(path, `#!/bin/sh\nls -l /proc/$$/fd > '${record}' 2>&1\nexit ${exit}\n`)
  await chmod(path, 0o755)
  return { path, record }
}

/** What the stand-in recorded: it ran, and which of its descriptors lead into the ledger. */
async function ledgerFilesIn (record: string): Promise<string[]> {
  const listing = await readFile(record, 'utf8')
  expect(listing).toMatch(/ 0 -> /)
  return listing.split('\n').filter((line) => line.includes(ledgerDir))
}

/** Processes other than this one holding a descriptor into the ledger, as `pid fd -> file`. */
async function otherHolders (): Promise<string[]> {
  const found: string[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [])
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      if (target.startsWith(ledgerDir)) found.push(`${pid} ${fd} -> ${target}`)
    }
  }
  return found
}

/** Put `dir` first on this process's PATH (where git and gpgv are looked up) for one test. */
function onPath (dir: string): void {
  const before = process.env.PATH
  process.env.PATH = `${dir}${delimiter}${before ?? ''}`
  teardown(() => { process.env.PATH = before })
}

beforeEach(async () => {
  const home = await tempDir(teardown, 'buildhaus-home-')
  ledgerDir = join(home, 'ledger')
  await openLedgerFiles(teardown, ledgerDir)
  // A ledger per test, as a node holds one: its log, LOCK, LOG and MANIFEST are what the checks look for.
  expect((await readdir(`/proc/${process.pid}/fd`).then(async (fds) => await Promise.all(fds.map(async (fd) => await readlink(`/proc/self/fd/${fd}`).catch(() => ''))))).filter((t) => t.startsWith(ledgerDir)).length).toBeGreaterThan(0)
  bin = await tempDir(teardown, 'buildhaus-bin-')
})

describe('processes the node starts hold none of its ledger\'s descriptors', () => {
  it('a tree tool (find, rm, chmod on a workspace)', async () => {
    const tool = await standIn('find')
    const run = await runTreeTool(tool.path, ['-P', bin])
    expect(run.ok, run.problem).toBe(true)
    expect(await ledgerFilesIn(tool.record)).toEqual([])
  })

  it('git, polling a watch: in its sandbox, and on a node without bubblewrap', async () => {
    // In its sandbox: a git alias runs a shell as git's child, which lists what git handed it into the work directory.
    const work = await tempDir(teardown)
    await runGit((dir) => ['-c', `alias.fds=!ls -l /proc/$$/fd > ${dir}/fds 2>&1`, 'fds'], { signal: AbortSignal.timeout(30_000), workDir: work })
    expect(await ledgerFilesIn(join(work, 'fds'))).toEqual([])
    // Without a usable bubblewrap, git runs as a process of the node's: a stand-in on PATH.
    const tool = await standIn('git', 1)
    onPath(bin)
    await expect(runGit(() => ['ls-remote', 'http://127.0.0.1:9/repo.git'], { signal: AbortSignal.timeout(30_000), bwrapPath: join(bin, 'no-bwrap') })).rejects.toThrow(/git ls-remote/)
    expect(await ledgerFilesIn(tool.record)).toEqual([])
  })

  it('gpgv, checking a Debian archive\'s InRelease', async () => {
    // gpgv runs in the tool sandbox (test/hostile/gpgv-sandbox.test.ts), which cannot write the record into
    // bin: the stand-in says what it holds as the last line of its stderr, which the refusal quotes.
    await writeFile(join(bin, 'gpgv'), `#!/bin/sh\necho "ledger descriptors: $(ls -l /proc/$$/fd | grep -c '${ledgerDir}')"  >&2\nexit 1\n`)
    await chmod(join(bin, 'gpgv'), 0o755)
    onPath(bin)
    const upstream = debianUpstream(await unsignedArchive(teardown), 'bookworm', 'hello', new AddressPolicy(['127.0.0.1']))
    await expect(upstream.list(AbortSignal.timeout(30_000))).rejects.toMatchObject({ name: 'UpstreamError', message: expect.stringMatching(/does not verify .*: ledger descriptors: 0$/) })
  })

  it('an environment\'s command (mmdebstrap, cp, du, bwrap)', async () => {
    const tool = await standIn('mmdebstrap')
    const result = await runCommand(tool.path, [], { timeoutMs: 30_000 })
    expect(result.code).toBe(0)
    expect(await ledgerFilesIn(tool.record)).toEqual([])
  })

  it('the lock between processes (flock)', async () => {
    const lock = await acquireLock(join(bin, 'lock'), { timeoutMs: 10_000 })
    try {
      expect(await otherHolders()).toEqual([])
    } finally {
      await lock.release()
    }
  })

  it('a probe of a host tool (bwrap --version, the toolchain\'s versions)', async () => {
    const tool = await standIn('cc')
    expect(await probeOutput(tool.path, ['--version'])).toBe('')
    expect(await ledgerFilesIn(tool.record)).toEqual([])
  })

  it('the CLI asking npm for its registry', async () => {
    const tool = await standIn('npm')
    await writeFile(tool.path, `#!/bin/sh\nls -l /proc/$$/fd > '${tool.record}' 2>&1\necho http://registry.invalid/\n`)
    expect(await defaultNpmRegistry({ PATH: `${bin}:/usr/bin:/bin`, HOME: bin })).toBe('http://registry.invalid/')
    expect(await ledgerFilesIn(tool.record)).toEqual([])
  })

  it('a step of a node without a sandbox (--sandbox none)', async () => {
    const executor = await createExecutor('none', { pollMs: 100 })
    // The log's host paths are scrubbed: the step counts the descriptors into the ledger itself.
    const outcome = await runJob(executor, teardown, await tempDir(teardown), { ...step(`echo "HELD $(ls -l /proc/$$/fd | grep -c -F '${ledgerDir}/')"`) })
    expect(outcome.status, logText(outcome)).toBe('pass')
    expect(logText(outcome)).toMatch(/^HELD 0$/m)
  })
})
