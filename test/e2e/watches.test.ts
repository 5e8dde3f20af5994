import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../../src/jobs/index.js'
import type { JobsResponse } from '../../src/node/api/routes/jobs.js'
import type { WatchListing } from '../../src/node/api/routes/watches.js'
import { waitFor } from '../../src/util/wait.js'
import { packDirectory } from '../../src/archive/index.js'
import { ROOT, runCli, type NodeProcess } from '../helpers/cluster.js'
import { jobOn, startLabelledCluster, useSuiteTeardown } from '../helpers/jobs.js'
import { tempDir } from '../helpers/temp-home.js'

const run = promisify(execFile)

async function freePort (): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

const BUILD_SPEC = { name: 'from-the-release', platforms: ['lab-w'], replicas: 1, steps: [{ name: 'build', run: 'mkdir -p out && cat VERSION > out/version.txt' }], artifacts: ['out/*'], timeout: 60 }

/**
 * Watches on a mesh of two nodes that poll (allowed to reach 127.0.0.1, as
 * this test says explicitly), against real upstreams on loopback: `git
 * daemon`, verdaccio (an npm registry; new versions come with `npm
 * publish`) and a server speaking PyPI's JSON API (PyPI itself is not
 * reachable from these machines). Each new release becomes exactly one job,
 * built once, recording its upstream and digest.
 */
describe('watches on a mesh, against real upstreams on loopback', () => {
  const teardown = useSuiteTeardown()
  let nodes: NodeProcess[]

  beforeAll(async () => {
    nodes = await startLabelledCluster(teardown, [['lab-w'], ['lab-w']], { args: ['--watch-allow', '127.0.0.1', '--watch-min-interval', '1'] })
  }, 90_000)

  async function jobsOf (node: NodeProcess, watch: string): Promise<JobView[]> {
    const { jobs } = await node.api<JobsResponse>('/api/jobs')
    const views = await Promise.all(jobs.map(async (j) => await jobOn(node, j.id)))
    return views.filter((v): v is JobView => v !== undefined && v.spec.trigger?.watch === watch)
  }

  async function verifiedRelease (node: NodeProcess, watch: string, release: string, timeoutMs = 60_000): Promise<JobView> {
    return await waitFor(async () => (await jobsOf(node, watch)).find((j) => j.spec.trigger?.release === release && j.verdict === 'verified'),
      { timeoutMs, intervalMs: 500, what: `release ${release} of watch ${watch.slice(0, 12)} to be built and verified` })
  }

  /** Exactly one job per release mesh-wide (duplicates, if a race made any, are cancelled and never built). */
  async function expectOneJobPerRelease (watch: string): Promise<void> {
    for (const node of nodes.filter((n) => n.running)) {
      const jobs = (await jobsOf(node, watch)).filter((j) => !j.cancelled)
      const releases = jobs.map((j) => j.spec.trigger!.release)
      expect(new Set(releases).size, JSON.stringify(releases)).toBe(releases.length)
      for (const j of (await jobsOf(node, watch)).filter((x) => x.cancelled)) expect(j.platforms.flatMap((p) => p.results)).toEqual([])
    }
  }

  it('npm: a version published to verdaccio is fetched, checked against its integrity, built once, and so is the next one', async () => {
    const dir = await tempDir(teardown, 'buildhaus-verdaccio-')
    const port = await freePort()
    await writeFile(join(dir, 'config.yaml'), [
      `storage: ${join(dir, 'storage')}`,
      `auth: { htpasswd: { file: ${join(dir, 'htpasswd')}, max_users: -1 } }`,
      'uplinks: {}',
      "packages: { '**': { access: $all, publish: $all, unpublish: $all } }",
      'log: { type: stdout, format: pretty, level: warn }'
    ].join('\n'))
    const verdaccio: ChildProcess = spawn(process.execPath, [join(ROOT, 'node_modules', 'verdaccio', 'bin', 'verdaccio'), '--config', join(dir, 'config.yaml'), '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' })
    teardown(() => { verdaccio.kill('SIGKILL') })
    const registry = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${registry}/-/ping`).catch(() => undefined))?.ok, { timeoutMs: 30_000, intervalMs: 200, what: 'verdaccio to answer' })
    const pkg = join(dir, 'pkg')
    await mkdir(pkg, { recursive: true })
    await writeFile(join(pkg, '.npmrc'), `//127.0.0.1:${port}/:_authToken=test-token\n`)
    await writeFile(join(pkg, 'buildhaus.json'), JSON.stringify(BUILD_SPEC))
    const publish = async (version: string): Promise<void> => {
      await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: 'bh-watched', version, files: ['buildhaus.json', 'VERSION'] }))
      await writeFile(join(pkg, 'VERSION'), `${version}\n`)
      await run('npm', ['publish', '--registry', registry], { cwd: pkg, env: { ...process.env, npm_config_cache: join(dir, 'cache') } })
    }
    await publish('1.0.0')

    const added = await runCli(['watch', 'add', 'npm', 'bh-watched', '--registry', registry, '--interval', '10', '--api', nodes[0]!.apiUrl, '--home', nodes[0]!.home, '--json'])
    expect(added.code, added.stderr).toBe(0)
    const watch = JSON.parse(added.stdout) as WatchListing
    const first = await verifiedRelease(nodes[0]!, watch.id, '1.0.0')
    const packument = await (await fetch(`${registry}/bh-watched`)).json() as { versions: Record<string, { dist: { integrity: string, tarball: string } }> }
    const integrity = Buffer.from(packument.versions['1.0.0']!.dist.integrity.slice('sha512-'.length), 'base64').toString('hex')
    expect(first.spec.upstream).toEqual({ url: packument.versions['1.0.0']!.dist.tarball, digest: { sha512: integrity } })
    expect(first.platforms[0]!.artifacts!.map((a) => a.path)).toEqual(['out/version.txt'])

    await publish('1.0.1')
    const second = await verifiedRelease(nodes[1]!, watch.id, '1.0.1')
    expect(second.spec.trigger).toEqual({ watch: watch.id, release: '1.0.1' })
    await expectOneJobPerRelease(watch.id)
    const listed = await runCli(['watch', 'list', '--api', nodes[1]!.apiUrl])
    expect(listed.stdout).toContain('npm bh-watched')
    expect(listed.stdout).toContain('latest 1.0.1')
  }, 180_000)

  it('pypi: a loopback server speaking PyPI\'s JSON API; the sdist is checked against its sha256 and built with a template using {version}', async () => {
    const dir = await tempDir(teardown, 'buildhaus-pypi-')
    const src = join(dir, 'src', 'hello-0.1')
    await mkdir(src, { recursive: true })
    await writeFile(join(src, 'hello.py'), 'print("hello")\n')
    const sdist = (await packDirectory(join(dir, 'src'))).bytes
    const sha = createHash('sha256').update(sdist).digest('hex')
    let served: Record<string, Buffer> = { '0.1': sdist }
    const server: Server = createHttpServer((req, res) => {
      if (req.url === '/pypi/hello/json') {
        const releases = Object.fromEntries(Object.entries(served).map(([v, bytes]) => [v, [{ packagetype: 'sdist', filename: `hello-${v}.tar.gz`, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/hello-${v}.tar.gz`, digests: { sha256: createHash('sha256').update(bytes).digest('hex') }, upload_time_iso_8601: new Date().toISOString() }]]))
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ info: { name: 'hello' }, releases }))
        return
      }
      const match = /^\/files\/hello-(.+)\.tar\.gz$/.exec(req.url ?? '')
      const bytes = match !== null ? served[match[1]!] : undefined
      if (bytes === undefined) { res.statusCode = 404; res.end(); return }
      res.end(bytes)
    })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
    const index = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const template = join(dir, 'template.json')
    await writeFile(template, JSON.stringify({ name: '{name} {version}', platforms: ['lab-w'], replicas: 1, steps: [{ name: 'build', run: 'mkdir -p out && python3 -c "print(1)" >/dev/null 2>&1; echo {version} > out/v.txt && cp hello.py out/' }], artifacts: ['out/*'], timeout: 60 }))

    const added = await runCli(['watch', 'add', 'pypi', 'hello', '--index', index, '--job', template, '--interval', '10', '--api', nodes[1]!.apiUrl, '--home', nodes[1]!.home, '--json'])
    expect(added.code, added.stderr).toBe(0)
    const watch = JSON.parse(added.stdout) as WatchListing
    const job = await verifiedRelease(nodes[1]!, watch.id, '0.1')
    expect(job.name).toBe('hello 0.1')
    expect(job.spec.upstream).toEqual({ url: `${index}/files/hello-0.1.tar.gz`, digest: { sha256: sha } })

    // A release whose file does not match its published sha256 is refused, and `watch list` says why.
    served = { ...served, '0.2': Buffer.from('tampered') }
    const original = server.listeners('request')[0] as (...args: unknown[]) => void
    server.removeAllListeners('request')
    server.on('request', (req: { url?: string }, res: { end: (b: Buffer) => void }) => {
      if (req.url === '/files/hello-0.2.tar.gz') { res.end(Buffer.from('something else')); return }
      original(req, res)
    })
    await waitFor(async () => (await nodes[1]!.api<WatchListing>(`/api/watches/${watch.id}`)).lastFailure?.reason?.includes('not the published'),
      { timeoutMs: 60_000, intervalMs: 500, what: 'the tampered release to be refused and reported' })
    expect((await jobsOf(nodes[1]!, watch.id)).map((j) => j.spec.trigger!.release)).toEqual(['0.1'])
  }, 180_000)

  it('git: tags served by `git daemon` become jobs; when the designated poller dies, the other node polls', async () => {
    const dir = await tempDir(teardown, 'buildhaus-git-')
    const work = join(dir, 'work')
    const repos = join(dir, 'repos')
    await mkdir(work, { recursive: true })
    await mkdir(repos, { recursive: true })
    const git = async (args: string[], cwd = work): Promise<string> => (await run('git', ['-c', 'user.email=t@example.org', '-c', 'user.name=t', ...args], { cwd })).stdout.trim()
    await git(['init', '-q', '-b', 'main'])
    await writeFile(join(work, 'buildhaus.json'), JSON.stringify(BUILD_SPEC))
    const tag = async (version: string): Promise<string> => {
      await writeFile(join(work, 'VERSION'), `${version}\n`)
      await git(['add', '.'])
      await git(['commit', '-q', '-m', version])
      await git(['tag', '-a', `v${version}`, '-m', version])
      await git(['push', '-q', '--tags', join(repos, 'project.git'), 'main'])
      return await git(['rev-parse', 'HEAD'])
    }
    await git(['init', '-q', '--bare', join(repos, 'project.git')], dir)
    const commit1 = await tag('1.0.0')
    await git(['tag', 'not-a-release'])
    const port = await freePort()
    // `git daemon` starts git-daemon as a child of its own: a group of their own, killed whole (killing git alone left git-daemon running).
    const daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${repos}`, '--listen=127.0.0.1', `--port=${port}`, repos], { stdio: 'ignore', detached: true })
    teardown(() => {
      try {
        process.kill(-daemon.pid!, 'SIGKILL')
      } catch {}
    })
    const url = `git://127.0.0.1:${port}/project.git`
    await waitFor(async () => (await run('git', ['ls-remote', url]).then(() => true, () => false)), { timeoutMs: 15_000, intervalMs: 200, what: 'git daemon to answer' })

    const added = await runCli(['watch', 'add', 'git', url, '--ref', 'refs/tags/v*', '--interval', '10', '--api', nodes[0]!.apiUrl, '--home', nodes[0]!.home, '--json'])
    expect(added.code, added.stderr).toBe(0)
    const watch = JSON.parse(added.stdout) as WatchListing
    const first = await verifiedRelease(nodes[0]!, watch.id, 'v1.0.0')
    expect(first.spec.upstream).toEqual({ url, digest: { gitCommit: commit1 } })
    expect((await readFile(join(work, 'VERSION'), 'utf8')).trim()).toBe('1.0.0')

    // Kill the designated poller; the other one takes over by itself.
    const pollers = (await nodes[1]!.api<WatchListing>(`/api/watches/${watch.id}`)).pollers
    const designated = nodes.find((n) => n.ready.author === pollers[0])!
    const survivor = nodes.find((n) => n !== designated)!
    await designated.kill('SIGKILL')
    const commit2 = await tag('1.1.0')
    const second = await verifiedRelease(survivor, watch.id, 'v1.1.0', 90_000)
    expect(second.submitter).toBe(survivor.ready.author)
    expect(second.spec.upstream!.digest).toEqual({ gitCommit: commit2 })
    await expectOneJobPerRelease(watch.id)
    expect((await jobsOf(survivor, watch.id)).map((j) => j.spec.trigger!.release).sort()).toEqual(['v1.0.0', 'v1.1.0'])
    const list = JSON.parse((await runCli(['watch', 'list', '--api', survivor.apiUrl, '--json'])).stdout) as { watches: WatchListing[] }
    const mine = list.watches.find((w) => w.id === watch.id)!
    expect(mine.lastSuccess?.author).toBe(survivor.ready.author)
    expect(mine.pollers[0]).toBe(survivor.ready.author)
  }, 180_000)
})
