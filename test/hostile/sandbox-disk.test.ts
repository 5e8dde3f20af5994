import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { clearWorkspaces, type Executor, type RunOutcome } from '../../src/sandbox/index.js'
import { removeTree } from '../../src/sandbox/workspace.js'
import { useTeardown } from '../helpers/temp-home.js'
import { bubblewrap, logText, runJob, step } from '../sandbox/helpers.js'

const run = promisify(execFile)
const teardown = useTeardown()

/** A directory name of 250 characters: 20 of them make a path longer than PATH_MAX (4096). */
const LONG = 'd'.repeat(250)
/** A shell line that descends 20 levels of 250-character names (cd one level at a time, as any build can). */
const DESCEND = `for i in $(seq 20); do mkdir ${LONG} && cd -P ${LONG} || exit 9; done`

let executor: Executor
let stagingRoot: string

/** A scratch directory removed at teardown even when a job left a tree too deep for fs.rm in it. */
async function scratch (prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  teardown(async () => { await removeTree(dir) })
  return dir
}

beforeAll(async () => {
  // A staging root of this file's own (a root node stages workspaces there), so that what is left is this file's alone.
  stagingRoot = await mkdtemp(join(tmpdir(), 'buildhaus-staging-'))
  executor = await bubblewrap({ stagingRoot })
  return async () => { await removeTree(stagingRoot) }
})

/** Every host path a run's result could leak: the work root, the staging root, the system temp dir. */
function hostPathsIn (outcome: RunOutcome, work: string): string[] {
  const text = JSON.stringify({ status: outcome.status, reason: outcome.reason, steps: outcome.steps, env: outcome.env }) + logText(outcome)
  return [work, stagingRoot, tmpdir() + '/', '/var/tmp'].filter((path) => text.includes(path))
}

describe('deep paths against the disk limit (issue 12, item 3)', () => {
  it('a job writing far past its disk limit at 20 levels of 250-character names is ended by the workspace limit', async () => {
    const work = await scratch('buildhaus-deep-')
    // 1 MiB at a time, up to 200 MiB, deep below PATH_MAX: a path-based walk cannot even lstat it.
    const outcome = await runJob(executor, teardown, work, {
      ...step(`${DESCEND}; for i in $(seq 200); do head -c 1048576 /dev/zero > f$i || exit 8; done; echo WROTE""-ALL`),
      limits: { workspaceMb: 32, fileMb: 8, wallSeconds: 60 }
    })
    expect(outcome.status, logText(outcome)).toBe('error')
    expect(outcome.reason).toBe('workspace limit (32 MB)')
    expect(logText(outcome)).not.toContain('WROTE-ALL')
    expect(hostPathsIn(outcome, work)).toEqual([])
  })

  it('a deep tree caught only by the check after the step (written in one go) is over the limit too', async () => {
    const work = await scratch('buildhaus-deep-')
    const outcome = await runJob(executor, teardown, work, {
      ...step(`${DESCEND}; for i in 1 2 3 4 5 6; do head -c 7000000 /dev/zero > big-$i; done`),
      limits: { workspaceMb: 16, fileMb: 8 }
    })
    expect(outcome.status, logText(outcome)).toBe('error')
    expect(outcome.reason).toBe('workspace limit (16 MB)')
  })

  it('with artifact globs over a deep tree the run ends with a clear status, collects what it can, and no host path reaches the result', async () => {
    const work = await scratch('buildhaus-deep-')
    const outcome = await runJob(executor, teardown, work, {
      ...step(`echo shallow > top.txt; (${DESCEND}; echo deep > deep.txt)`),
      artifacts: ['**/*.txt'],
      limits: { workspaceMb: 32 }
    })
    expect(outcome.status, `${outcome.reason ?? ''}\n${logText(outcome)}`).toBe('pass')
    expect(outcome.artifacts.map((a) => a.path)).toEqual(['top.txt'])
    expect(logText(outcome)).toContain('[artifacts: 1 file has a path longer than 4096 bytes: not collected]')
    expect(hostPathsIn(outcome, work)).toEqual([])
  })

  it('nothing of a deep workspace is left once the run is disposed of', async () => {
    const work = await scratch('buildhaus-deep-')
    const outcome = await executor.run({
      source: Buffer.alloc(1024),
      steps: [{ name: 'deep', run: `${DESCEND}; head -c 100000 /dev/zero > leftover` }],
      artifacts: [],
      network: false,
      root: false,
      limits: { wallSeconds: 20, cpuSeconds: 20, memoryMb: 128, processes: 64, fileMb: 64, openFiles: 256, workspaceMb: 32, logKb: 64, outputMb: 4 },
      workRoot: work
    })
    expect(outcome.status, logText(outcome)).toBe('pass')
    await outcome.dispose()
    expect(await readdir(work)).toEqual([])
    expect(await readdir(stagingRoot)).toEqual([])
  })

  it('a restarting node removes what earlier runs left in its work directory, at any depth', async () => {
    const work = await scratch('buildhaus-deep-')
    // What a crash in the middle of a run leaves: a run directory with a tree deeper than PATH_MAX.
    const left = join(work, 'run-left-by-a-crash')
    await mkdir(left)
    await run('/bin/sh', ['-c', `cd "${left}" && ${DESCEND} && echo x > f`])
    await mkdir(join(work, 'not-a-run'))
    await clearWorkspaces(work)
    expect(await readdir(work)).toEqual(['not-a-run'])
  })

  it('a walk that fails says so (it is a violation, never a pass), without the host path', async () => {
    const { diskUsage } = await import('../../src/sandbox/disk-usage.js')
    const missing = join(await scratch('buildhaus-deep-'), 'gone')
    const usage = await diskUsage(missing, { maxBytes: 1024, maxEntries: 10, reopenUnreadable: false })
    expect(usage.complete).toBe(false)
    expect(usage.problem).toBe('No such file or directory')
    expect(usage.problem).not.toContain(missing)
  })
})

describe('host paths never reach a result', () => {
  it('a sandbox that fails to start names no host path in its reason or log', async () => {
    const work = await scratch('buildhaus-hostpath-')
    // bwrap refuses a bind of a host path that does not exist, and says which.
    const missing = join(work, 'no-such-toolchain')
    const broken = await bubblewrap({ stagingRoot, extraReadOnly: [missing], selfTest: false })
    const outcome = await runJob(broken, teardown, work, { ...step('true') })
    expect(outcome.status).toBe('error')
    expect(outcome.reason).toMatch(/^sandbox failed to start: .*(<work>|<path>)/)
    expect(hostPathsIn(outcome, work)).toEqual([])
  })

  it('scrubs the run\'s own directories by name and any other absolute path', async () => {
    const { HostPaths } = await import('../../src/sandbox/sanitize.js')
    const paths = new HostPaths().add('/home/v/.buildhaus/work', '<work>').add('/var/tmp/buildhaus-sandbox/run-1-2-x/build', '<workspace>')
    expect(paths.scrub("ENAMETOOLONG: name too long, lstat '/var/tmp/buildhaus-sandbox/run-1-2-x/build/a/b'")).toBe("ENAMETOOLONG: name too long, lstat '<workspace>/a/b'")
    expect(paths.scrub('bwrap: Can\'t find source path /opt/tools: No such file or directory')).toBe('bwrap: Can\'t find source path <path>: No such file or directory')
    expect(paths.fault(Object.assign(new Error("ENOSPC: no space left on device, write '/home/v/.buildhaus/work/run-7/artifacts/x'"), { code: 'ENOSPC' })))
      .toBe("ENOSPC: no space left on device, write '<work>/run-7/artifacts/x'")
    expect(paths.scrub('exit 3 after 5/6 steps')).toBe('exit 3 after 5/6 steps')
  })
})
