import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { enableCompileCacheFor, relaunchOptionsFor } from '../../src/node/cli/heap.js'
import { BIN, startNodeProcess } from '../helpers/cluster.js'
import { useTeardown } from '../helpers/temp-home.js'

/** The machine's own Node.js when it is older than 22 (Debian 12's is 20), else undefined. */
function olderNode (): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim()
      if (Number(/^v(\d+)/.exec(version)?.[1]) < 22) return candidate
    } catch {
      // not installed there
    }
  }
  return undefined
}

const old = olderNode()
if (old === undefined) console.warn('skipping the launcher\'s old-Node test: this machine has no Node.js older than 22 in /usr/bin or /usr/local/bin')

describe('bin/buildhaus-node.js', () => {
  const teardown = useTeardown()

  it('starts a node command again with one V8 worker thread, in the same process, unless the user chose a pool size or attached a debugger', async () => {
    expect(relaunchOptionsFor(['join'], [])).toEqual(['--v8-pool-size=1'])
    expect(relaunchOptionsFor(['demo', '--exit'], ['--import', 'x.js'])).toEqual(['--v8-pool-size=1'])
    expect(relaunchOptionsFor(['join'], ['--v8-pool-size=4'])).toEqual([])
    expect(relaunchOptionsFor(['join'], ['--inspect=0'])).toEqual([])
    // One-shot commands start once.
    expect(relaunchOptionsFor(['audit'], [])).toEqual([])
    expect(relaunchOptionsFor([], [])).toEqual([])

    const node = await startNodeProcess(teardown)
    // The ready line comes from the process the test spawned (execve keeps its id), started again with the option.
    expect(node.ready.pid).toBe(node.pid)
    const cmdline = (await readFile(`/proc/${node.pid!}/cmdline`, 'utf8')).split('\0')
    expect(cmdline.filter((arg) => arg === '--v8-pool-size=1')).toHaveLength(1)
    expect(cmdline).toContain('join')
  })

  it('whose reader has gone (`audit FILE | head`), ends with the command\'s own exit code and says nothing about the pipe', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-pipe-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    const run = async (lines: string): Promise<{ code: number | null, stderr: string }> => {
      const file = join(dir, 'export.ndjson')
      await writeFile(file, lines)
      const child = spawn(process.execPath, [BIN, 'audit', '--trust', 'everyone', file], { stdio: ['ignore', 'pipe', 'pipe'] })
      // The reader is gone before the first byte: every write fails with EPIPE.
      child.stdout.destroy()
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
      return { code, stderr }
    }
    // An empty log is valid; a damaged one lists a problem per line (more than a pipe holds).
    expect(await run('')).toEqual({ code: 0, stderr: '' })
    expect(await run('not an entry\n'.repeat(3000))).toEqual({ code: 1, stderr: '' })
  })

  it('keeps the compiled code of a one-shot command in the user\'s cache directory, not for a node, not over NODE_COMPILE_CACHE', async () => {
    expect(enableCompileCacheFor(['join'], {})).toBeUndefined()
    expect(enableCompileCacheFor(['status'], { NODE_COMPILE_CACHE: '/somewhere' })).toBeUndefined()
    const cacheHome = await mkdtemp(join(tmpdir(), 'buildhaus-cache-'))
    teardown(async () => { await rm(cacheHome, { recursive: true, force: true }) })
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome }
    delete env.NODE_COMPILE_CACHE
    delete env.NODE_DISABLE_COMPILE_CACHE
    const run = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env, timeout: 20_000 })
    expect(run.status).toBe(0)
    expect(run.stdout).toMatch(/^buildhaus-node \d+\.\d+\.\d+/)
    // One directory per Node version, holding the bundle's compiled files.
    const versions = await readdir(join(cacheHome, 'buildhaus', 'node-compile-cache'))
    expect(versions).toHaveLength(1)
    expect((await readdir(join(cacheHome, 'buildhaus', 'node-compile-cache', versions[0]!))).length).toBeGreaterThan(0)
    // A cache directory that cannot be made leaves the cache off and the command as it was (under /proc, Node's own
    // recursive mkdir loops for ever: the command hung).
    const odd = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env: { ...env, XDG_CACHE_HOME: '/proc/buildhaus-no-such-dir' }, timeout: 20_000 })
    expect(odd.status).toBe(0)
    expect(odd.stdout).toMatch(/^buildhaus-node \d+\.\d+\.\d+/)
  })

  it.skipIf(old === undefined)('run by a Node.js older than 22, says in one sentence to use npx (or Node 22) and exits 1, before loading libp2p', () => {
    const result = spawnSync(old!, [BIN, 'peers'], { encoding: 'utf8', timeout: 20_000 })
    expect(result.status).toBe(1)
    const lines = result.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^buildhaus-node needs Node\.js 22 or later, and this is Node\.js 2\d\.\d+\.\d+: .*npx buildhaus-node/)
    expect(result.stdout).toBe('')
  })
})
