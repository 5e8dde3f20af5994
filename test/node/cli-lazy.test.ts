import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { BIN, ROOT } from '../helpers/cluster.js'
import { useTeardown } from '../helpers/temp-home.js'

const BUNDLE = join(ROOT, 'dist', 'bundle')

/**
 * Records the URL of every module Node loads, and writes them to
 * $LOADED_FILE at exit: a hook of node:module (in the same thread, given
 * with --import before bin/ runs), so it sees what is loaded, static
 * imports and import() alike, whatever the timing.
 */
const RECORDER = `
import { writeFileSync } from 'node:fs'
import { registerHooks } from 'node:module'
const loaded = []
registerHooks({ load (url, context, next) { loaded.push(url); return next(url, context) } })
process.on('exit', () => {
  writeFileSync(process.env.LOADED_FILE, loaded.join('\\n'))
  writeFileSync(process.env.LOADED_FILE + '.internal', process.moduleLoadList.join('\\n'))
})
`

interface Run { status: number | null, stdout: string, stderr: string, sources: string[], internals: string[] }

describe('the CLI loads a command\'s code only when that command runs', () => {
  const teardown = useTeardown()

  /**
   * Run the CLI as a user does (bin/ and the bundle) and say which sources
   * it loaded: the sources, from its source map, of each bundle file Node
   * loaded. Ours as paths from the root (src/…), a dependency as
   * `node_modules/NAME/…`.
   */
  async function run (args: string[]): Promise<Run> {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    await writeFile(join(dir, 'recorder.mjs'), RECORDER)
    const loadedFile = join(dir, 'loaded.txt')
    const env: NodeJS.ProcessEnv = { ...process.env, LOADED_FILE: loadedFile, NODE_DISABLE_COMPILE_CACHE: '1' }
    // Not spawnSync: a test's own HTTP server must go on answering while the command runs.
    const result = await new Promise<{ status: number | null, stdout: string, stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', join(dir, 'recorder.mjs'), BIN, ...args], { encoding: 'utf8', env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
      })
    })
    const files = (await readFile(loadedFile, 'utf8')).split('\n')
      .filter((url) => url.startsWith('file:'))
      .map((url) => fileURLToPath(url))
      .filter((file) => file.startsWith(`${BUNDLE}/`))
    const sources = new Set<string>()
    for (const file of files) {
      const map = JSON.parse(await readFile(`${file}.map`, 'utf8')) as { sources: string[] }
      for (const source of map.sources) {
        const path = resolve(BUNDLE, source)
        const dependency = /\/node_modules\/(.*)$/.exec(path)
        sources.add(dependency !== null ? `node_modules/${dependency[1]!}` : relative(ROOT, path))
      }
    }
    // Node's own modules too (process.moduleLoadList: `NativeModule internal/deps/undici/undici`…).
    const internals = (await readFile(`${loadedFile}.internal`, 'utf8')).split('\n')
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, sources: [...sources], internals }
  }

  /** The sources of a command's code or of a dependency: none is loaded before a command runs. */
  const commandCode = (sources: string[]): string[] => sources.filter((s) => s.startsWith('node_modules/') || /^src\/node\/cli\/commands\/(?!index\.ts$)/.test(s))

  it('`--version` and `status --help` load the parser and the specs, and no command nor any dependency', async () => {
    const version = await run(['--version'])
    expect(version.status, version.stderr).toBe(0)
    expect(version.stdout).toMatch(/^buildhaus-node \d+\.\d+\.\d+\n$/)
    expect(version.sources).toContain('src/node/cli/parse.ts')
    expect(version.sources).toContain('src/node/cli/specs.ts')
    expect(commandCode(version.sources)).toEqual([])

    const help = await run(['status', '--help'])
    expect(help.status, help.stderr).toBe(0)
    expect(help.stdout).toMatch(/^Usage: buildhaus-node status JOB \[options\]\n/)
    expect(commandCode(help.sources)).toEqual([])
  })

  it('a command that runs loads its own module (and what it needs), not the node', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-log-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    const log = join(dir, 'empty.ndjson')
    await writeFile(log, '')
    const audit = await run(['audit', '--trust', 'everyone', '--json', log])
    expect(audit.status, audit.stderr).toBe(0)
    expect(JSON.parse(audit.stdout)).toMatchObject({ log: { valid: true, lines: 0 } })
    // The recorder sees what import() loads: the audit's own module is there.
    expect(audit.sources).toContain('src/node/cli/commands/audit.ts')
    expect(audit.sources).not.toContain('src/node/cli/commands/join.ts')
    expect(audit.sources).not.toContain('src/node/daemon.ts')
    // Nor the node's parts that an audit has no use for: the sandbox, the environment store, the network, the key code.
    expect(audit.sources.filter((s) => /^src\/(sandbox|environments|gossip|archive)\/(?!constants\.ts|limits\.ts|names\.ts|manifest\.ts|errors\.ts)/.test(s))).toEqual([])
    expect(audit.sources.filter((s) => /^src\/(ledger\/(store\.ts|sync\/|gossip\/)|jobs\/service\/|node\/home\/identity)/.test(s))).toEqual([])
    expect(audit.sources.filter((s) => /^node_modules\/(@libp2p\/(gossipsub|crypto|peer-id)|@chainsafe|tar-stream|level)/.test(s))).toEqual([])
  })

  it('a command that talks to a node loads neither zod nor the layers below the CLI', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-home-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    // A node's api.json whose pid is gone: the command reads it, checks it, and says so.
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url: 'http://127.0.0.1:9', pid: 2 ** 22 + 1, peerId: '12D3KooW', startedAt: 1 }))
    const status = await run(['status', 'abcdef', '--home', dir])
    expect(status.status).toBe(1)
    expect(status.stderr).toMatch(/its api\.json names pid \d+, which has exited/)
    expect(status.sources).toContain('src/node/api/file.ts')
    expect(status.sources.filter((s) => s.startsWith('node_modules/'))).toEqual([])
    expect(status.sources.filter((s) => /^src\/(ledger|jobs\/(?!constants\.ts)|gossip\/(?!constants\.ts)|sandbox\/(?!limits\.ts))/.test(s))).toEqual([])
  })

  it('a command that asks a node something does not load fetch\'s implementation (undici) nor TLS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-http-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    // Something that answers every request with an error: the command asks it over HTTP and says so.
    const asked: string[] = []
    const server = createServer((request, response) => {
      asked.push(`${request.method ?? ''} ${request.url ?? ''}`)
      response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'internal', message: 'not today' } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
    const { port } = server.address() as AddressInfo
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, peerId: '12D3KooW', startedAt: 1 }))
    const status = await run(['status', 'abcdef', '--home', dir])
    expect(status.status).toBe(1)
    expect(asked.length).toBeGreaterThan(0)
    expect(status.stderr).toMatch(/GET \/api\/jobs at http:\/\/127.0.0.1:\d+ failed with HTTP 500/)
    expect(status.internals.filter((m) => /undici|internal\/tls|_tls_/.test(m))).toEqual([])
  })

  it('`log export` from a running node loads neither its store nor LevelDB, and a long export into a file says how far it is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-export-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    // A node whose log is 9,000 lines, the second half sent after a pause: an export that lasts over 2 s.
    const server = createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'application/x-ndjson' })
      const half = Array.from({ length: 4_500 }, (_, i) => `{"line":${i}}\n`).join('')
      response.write(half)
      setTimeout(() => { response.end(half) }, 2_100)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
    const { port } = server.address() as AddressInfo
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, peerId: '12D3KooW', startedAt: 1 }))
    const output = join(dir, 'log.ndjson')
    const exported = await run(['log', 'export', '--home', dir, '-o', output])
    expect(exported.status, exported.stderr).toBe(0)
    expect((await readFile(output, 'utf8')).split('\n')).toHaveLength(9_001)
    // At least the line at 8,192 entries, which the pause puts 2 s after the start (a slow machine may say more).
    expect(exported.stderr).toMatch(/log export: 8,192 entries so far \([\d,]+ a second\)\nexported 9000 entries to /)
    expect(exported.sources.filter((s) => /^(src\/ledger\/(store|export|entry)\.ts|src\/jobs\/bodies\.ts|node_modules\/(classic-level|level|abstract-level|@libp2p|zod))/.test(s))).toEqual([])
  })

  it('`env list`, `watch list`, `verify FILE`, `attest` and `fetch` load what they need, not the network\'s modules, zod or the job service', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-misc-'))
    teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ watches: [], matches: [], jobs: [] }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
    const { port } = server.address() as AddressInfo
    await writeFile(join(dir, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, peerId: '12D3KooW', startedAt: 1 }))
    const environments = join(dir, 'environments')
    const envList = await run(['env', 'list', '--json', '--environment-dir', environments])
    expect(envList.status, envList.stderr).toBe(0)
    expect(envList.sources.filter((s) => /^(src\/gossip\/(?!constants\.ts)|node_modules\/(libp2p|@libp2p\/(?!logger)|@chainsafe))/.test(s))).toEqual([])
    const watches = await run(['watch', 'list', '--json', '--home', dir])
    expect(watches.sources).toContain('src/node/cli/commands/watch.ts')
    expect(watches.sources.filter((s) => /^(node_modules\/zod|src\/jobs\/(?!constants\.ts))/.test(s))).toEqual([])
    const file = join(dir, 'artifact.txt')
    await writeFile(file, 'built\n')
    const verify = await run(['verify', file, '--json', '--home', dir])
    expect(verify.sources).toContain('src/node/cli/commands/verify.ts')
    expect(verify.sources.filter((s) => /^src\/(jobs\/(service|spec|bodies|state)|ledger\/|node\/cli\/audit\.ts)/.test(s))).toEqual([])
    // attest and fetch read a job's view (and fetch checks its log slice with the entry rules), never through the node's job service.
    for (const args of [['attest', 'abcdef', '--json'], ['fetch', 'abcdef', '-o', join(dir, 'fetched')]]) {
      const ran = await run([...args, '--home', dir])
      expect(ran.sources).toContain(`src/node/cli/commands/${args[0]!}.ts`)
      expect(ran.sources.filter((s) => /^src\/(jobs\/(service|spec|watches|scheduler)|node\/cli\/audit\.ts)/.test(s))).toEqual([])
    }
  })

  it('`submit` loads the spec reader and the packer, not zod, nor the node\'s job service, sandbox or environment store', async () => {
    const home = await mkdtemp(join(tmpdir(), 'buildhaus-lazy-submit-'))
    teardown(async () => { await rm(home, { recursive: true, force: true }) })
    await writeFile(join(home, 'api.json'), JSON.stringify({ url: 'http://127.0.0.1:9', pid: 2 ** 22 + 1, peerId: '12D3KooW', startedAt: 1 }))
    const submit = await run(['submit', join(ROOT, 'examples', 'hello'), '--home', home])
    expect(submit.status).toBe(1)
    expect(submit.stderr).toMatch(/its api\.json names pid \d+, which has exited/)
    expect(submit.sources).toContain('src/jobs/spec-file.ts')
    expect(submit.sources).toContain('src/archive/pack.ts')
    // A buildhaus.json of the common shapes is read without the schema: no zod.
    expect(submit.sources.filter((s) => /^(node_modules\/zod|src\/jobs\/(spec|bodies)\.ts)/.test(s))).toEqual([])
    expect(submit.sources.filter((s) => /^src\/(jobs\/(service\/|scheduler|watches|state|verdict)|sandbox\/(?!limits\.ts|constants\.ts)|environments\/store|gossip\/(?!constants\.ts)|ledger\/(store|sync))/.test(s))).toEqual([])
    expect(submit.sources.filter((s) => /^node_modules\/(tweetnacl|multiformats|@libp2p|level)/.test(s))).toEqual([])
  })
})
