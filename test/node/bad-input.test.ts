import { spawn } from 'node:child_process'
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { NODE, runCli, startNodeProcess, TEST_NODE_ARGS, type CliResult } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/** A peer id nobody runs: bootstrap targets that cannot answer as that peer. */
const ABSENT_PEER = '12D3KooWHPeBAvfnMKMD7Nmc2tAbRN7mSgnYGwBEsbSDv2PAWwBM'
const ANOTHER_ABSENT_PEER = '12D3KooWEwcSgDrMagU34XaeeyHvy3NqAXYdd6GFbivd2usqreWN'

/** The exit code, and stderr is one line: "buildhaus-node: <sentence>", no stack trace. */
function expectOneSentence (result: CliResult, code: number, message: RegExp): void {
  const stderr = result.stderr.trim()
  expect(result.code, stderr).toBe(code)
  expect(stderr.split('\n'), stderr).toHaveLength(1)
  expect(stderr).toMatch(/^buildhaus-node: \S/)
  expect(stderr).not.toMatch(/\bat .*\.js:\d+/)
  expect(stderr).toMatch(message)
}

/** Every file in the home with its mode and bytes: to prove a failure touched nothing. */
async function snapshot (home: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {}
  for (const name of (await readdir(home)).sort()) {
    const path = join(home, name)
    const info = await stat(path)
    result[name] = `${(info.mode & 0o777).toString(8)} ${info.isFile() ? (await readFile(path)).toString('base64') : 'dir'}`
  }
  return result
}

/** Nothing that was in the home changed or went away (a start may create its empty state folders). */
function expectKept (before: Record<string, string>, after: Record<string, string>): void {
  for (const [name, state] of Object.entries(before)) expect(after[name], name).toBe(state)
}

async function initHome (teardown: Teardown): Promise<string> {
  const home = join(await tempDir(teardown), 'home')
  const result = await runCli(['init', '--home', home, '--json'])
  expect(result.code, result.stderr).toBe(0)
  return home
}

/** A local TCP port: `hold` keeps it busy (and silent), else it is closed again at once. */
async function port (teardown: Teardown, hold: boolean): Promise<number> {
  // Reads and discards: a peer that never answers (and notices when the other end goes away).
  const server: Server = createServer((socket) => { socket.on('error', () => {}).resume() })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  if (hold) teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
  else await new Promise((resolve) => server.close(resolve))
  return port
}

describe('bad input: one sentence, a non-zero exit, nothing overwritten', () => {
  const teardown = useTeardown()

  it('init refuses to overwrite an existing key', async () => {
    const home = await initHome(teardown)
    const before = await snapshot(home)
    expect(before['key.pem']).toMatch(/^600 /)
    expect(before['api-token']).toMatch(/^600 /)
    expectOneSentence(await runCli(['init', '--home', home]), 1, /a key already exists at .*key\.pem; refusing to overwrite it/)
    expectKept(before, await snapshot(home))
  })

  it('join refuses a key file others can read, and an unusable one', async () => {
    const home = await initHome(teardown)
    await chmod(join(home, 'key.pem'), 0o644)
    const before = await snapshot(home)
    expectOneSentence(await runCli(['join', '--home', home, ...TEST_NODE_ARGS]), 1, /the key file .*key\.pem is readable by other users \(mode 0644\); run `chmod 600 .*key\.pem` and start again/)
    expectKept(before, await snapshot(home))

    await writeFile(join(home, 'key.pem'), 'not a key\n', { mode: 0o600 })
    await chmod(join(home, 'key.pem'), 0o600)
    const garbled = await snapshot(home)
    expectOneSentence(await runCli(['join', '--home', home, ...TEST_NODE_ARGS]), 1, /the key file .*key\.pem is not usable: not a PEM private key/)
    expectKept(garbled, await snapshot(home))

    await rm(join(home, 'key.pem'))
    await mkdir(join(home, 'key.pem'), { mode: 0o700 })
    expectOneSentence(await runCli(['join', '--home', home, ...TEST_NODE_ARGS]), 1, /cannot read the key file .*key\.pem: EISDIR/)
  })

  it('join says which port is taken, p2p or API', async () => {
    const home = await initHome(teardown)
    const before = await snapshot(home)
    const busy = await port(teardown, true)
    const [p2p, api] = await Promise.all([
      runCli(['join', '--home', home, '--no-mdns', '--listen', `/ip4/127.0.0.1/tcp/${busy}`, '--api', '127.0.0.1:0']),
      runCli(['join', '--home', await initHome(teardown), '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${busy}`])
    ])
    expectOneSentence(p2p, 1, new RegExp(`^buildhaus-node: the p2p address /ip4/127\\.0\\.0\\.1/tcp/${busy} is already in use \\(is another buildhaus-node running\\?\\); stop that program or pass --listen with another port$`))
    expectOneSentence(api, 1, new RegExp(`^buildhaus-node: the API address 127\\.0\\.0\\.1:${busy} is already in use .*; stop that program or pass --api with another port`))
    expectKept(before, await snapshot(home))
  })

  it('join stops when no bootstrap peer can be reached, naming the address', async () => {
    const home = await initHome(teardown)
    const before = await snapshot(home)
    const refused = `/ip4/127.0.0.1/tcp/${await port(teardown, false)}/p2p/${ABSENT_PEER}`
    const silent = `/ip4/127.0.0.1/tcp/${await port(teardown, true)}/p2p/${ANOTHER_ABSENT_PEER}`
    const [one, both] = await Promise.all([
      runCli(['join', '--home', home, ...TEST_NODE_ARGS, '--bootstrap', refused]),
      runCli(['join', '--home', await initHome(teardown), ...TEST_NODE_ARGS, '--bootstrap', silent, '--bootstrap', refused])
    ])
    expectOneSentence(one, 1, new RegExp(`^buildhaus-node: cannot reach the bootstrap peer ${refused}: .*ECONNREFUSED.*; check that the peer is running and the address \\(including its /p2p/ peer id\\) is right, or start without --bootstrap to begin a new mesh$`))
    // The silent one only fails when the deadline passes; the refusal is the more telling error to name.
    expectOneSentence(both, 1, new RegExp(`^buildhaus-node: cannot reach any of the 2 bootstrap peers \\(${refused}: .*ECONNREFUSED.*\\); check that they are running`))
    expectKept(before, await snapshot(home))
  })

  it('join refuses malformed flags with exit 2 before touching the home', async () => {
    const parent = await tempDir(teardown)
    const cases: Array<[string[], RegExp]> = [
      [['--listen', 'tcp/4710'], /--listen tcp\/4710 is not a valid multiaddr .*; write it like \/ip4\/127\.0\.0\.1\/tcp\/4710/],
      [['--bootstrap', '/ip4/127.0.0.1/tcp/4710'], /--bootstrap \/ip4\/127\.0\.0\.1\/tcp\/4710 does not name a peer; add \/p2p\/<peer id>/],
      [['--bootstrap', '/ip4/300.0.0.1/tcp/4710'], /--bootstrap \/ip4\/300\.0\.0\.1\/tcp\/4710 is not a valid multiaddr/],
      [['--slots', 'lots'], /--slots "lots" is not a whole number from 0 to 1024/],
      [['--platform', 'Linux'], /--platform "Linux" is not a platform label/],
      [['--api', '4711'], /--api "4711" is not HOST:PORT/],
      [['--sandbox', 'chroot'], /--sandbox "chroot" is not a sandbox; use --sandbox bubblewrap/],
      [['--frobnicate'], /Unknown option '--frobnicate' \(see `buildhaus-node join --help`\)/]
    ]
    const results = await Promise.all(cases.map(async ([args], i) => await runCli(['join', '--home', join(parent, `home-${i}`), '--no-mdns', ...args])))
    results.forEach((result, i) => { expectOneSentence(result, 2, cases[i]![1]) })
    expect(await readdir(parent)).toEqual([])
  })

  it('join refuses a home whose node is running, and leaves that node alone', async () => {
    const running = await startNodeProcess(teardown)
    const before = await snapshot(running.home)
    expectOneSentence(await runCli(['join', '--home', running.home, ...TEST_NODE_ARGS]), 1,
      new RegExp(`^buildhaus-node: a node is already running in .* \\(pid ${running.ready.pid}, API ${running.apiUrl.replace(/\./g, '\\.')}\\); stop it first, or give this one another --home$`))
    expectKept(before, await snapshot(running.home))
    expect((await running.health()).peerId).toBe(running.peerId)
  })
})

describe('peers: says clearly when there is no node to ask', () => {
  const teardown = useTeardown()

  it('no api.json, a stale one, a refused connection, a malformed --api', async () => {
    const home = await initHome(teardown)
    expectOneSentence(await runCli(['peers', '--home', home]), 1, /no node is running in .* \(it has no api\.json\); start one with `buildhaus-node join --home /)

    // An api.json that is not what a node writes says which field is wrong.
    await writeFile(join(home, 'api.json'), JSON.stringify({ url: 'http://127.0.0.1:1', pid: 'seven', peerId: ABSENT_PEER, startedAt: 1 }))
    expectOneSentence(await runCli(['peers', '--home', home]), 1, /api\.json is unreadable \(pid: not a positive integer\); restart the node with `buildhaus-node join --home /)

    // A crash leaves api.json naming a process that is gone.
    const gone = spawn(NODE, ['-e', ''])
    await new Promise((resolve) => gone.once('exit', resolve))
    const closed = await port(teardown, false)
    await writeFile(join(home, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${closed}`, pid: gone.pid, peerId: ABSENT_PEER, startedAt: 1 }))
    expectOneSentence(await runCli(['peers', '--home', home]), 1, new RegExp(`the node in .* is not running: its api\\.json names pid ${gone.pid!}, which has exited \\(a leftover of a crash, harmless\\); start it with`))

    // A live process but nothing listening (the node is starting or stopping).
    await writeFile(join(home, 'api.json'), JSON.stringify({ url: `http://127.0.0.1:${closed}`, pid: process.pid, peerId: ABSENT_PEER, startedAt: 1 }))
    expectOneSentence(await runCli(['peers', '--home', home]), 1, new RegExp(`no node answers at http://127\\.0\\.0\\.1:${closed}, the address in .*api\\.json \\(connection refused\\)`))

    expectOneSentence(await runCli(['peers', '--api', `http://127.0.0.1:${closed}`]), 1, new RegExp(`^buildhaus-node: no node answers at http://127\\.0\\.0\\.1:${closed} \\(connection refused\\); check the address, or start a node with`))
    expectOneSentence(await runCli(['peers', '--api', 'ftp://x']), 2, /--api ftp:\/\/x is not an http\(s\) URL/)
  })

  it('verify refuses the options that judge an export without --log, and a --signatures it does not know', async () => {
    const dir = await tempDir(teardown)
    const file = join(dir, 'artifact.txt')
    await writeFile(file, 'built\n')
    for (const extra of [['--signatures', 'chain'], ['--slice'], ['--trust', 'everyone']]) {
      expectOneSentence(await runCli(['verify', file, ...extra]), 2, /--mesh, --trust, --quorum, --slice and --signatures judge an exported log: add --log EXPORT/)
    }
    const log = join(dir, 'empty.ndjson')
    await writeFile(log, '')
    expectOneSentence(await runCli(['verify', file, '--log', log, '--trust', 'everyone', '--signatures', 'some']), 2, /--signatures received "some"; give `every`/)
  })

  it('prints an aligned table from a running node', async () => {
    const node = await startNodeProcess(teardown)
    const result = await runCli(['peers', '--home', node.home])
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^PEER ID\s+PLATFORMS\s+FREE\s+RUNNING\s+SEEN\s+VERSION\s+REACH\s+ADDRESS$/)
    // A node on loopback alone has no public address and no relay: private.
    expect(lines[1]).toMatch(/\sprivate\s/)
    expect(lines[1]).toContain(`${node.peerId} *`)
    expect(lines[1]!.indexOf(node.ready.platforms.join(','))).toBe(lines[0]!.indexOf('PLATFORMS'))
    expect(lines.at(-1)).toBe('0 peers besides this node (*)')
  })
})
