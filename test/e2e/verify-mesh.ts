import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { arch, platform, release } from 'node:os'
import { join } from 'node:path'
import type { ResultBody } from '../../src/jobs/bodies.js'
import { main } from '../../src/node/cli/main.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import { testMesh } from '../helpers/test-mesh.js'
import type { Executor } from '../../src/sandbox/index.js'
import { tempDir } from '../helpers/temp-home.js'
import { waitFor } from '../../src/util/wait.js'

type Teardown = (fn: () => unknown) => void

/**
 * The mesh of the cross-verification tests: real in-process nodes (libp2p on
 * loopback, LevelDB, blob exchange, the job service building in bubblewrap),
 * all believing every builder with quorum 2.
 *
 * - a, b: builders offering `linux-x64` and `pair`;
 * - c: a builder offering `linux-x64` only (so jobs for `linux-x64+pair` can
 *   only ever be built by a and b: who built what is known in advance);
 * - liar: a node that joins without building (no executor, 0 slots); the
 *   tests write forged results with its ledger.
 */
export interface VerifyMesh {
  a: RunningNode
  b: RunningNode
  c: RunningNode
  liar: RunningNode
  all: RunningNode[]
}

export const PAIR = 'linux-x64+pair'
export const NODE_QUORUM = 2

export async function startVerifyMesh (teardown: Teardown, executor: Executor): Promise<VerifyMesh> {
  const base = await tempDir(teardown, 'buildhaus-e2e-verify-')
  const plans = [
    { name: 'a', platform: ['linux-x64', 'pair'], slots: '2', build: true },
    { name: 'b', platform: ['linux-x64', 'pair'], slots: '2', build: true },
    { name: 'c', platform: ['linux-x64'], slots: '2', build: true },
    { name: 'liar', platform: ['linux-x64'], slots: '0', build: false }
  ]
  const nodes: RunningNode[] = []
  for (const plan of plans) {
    // Every node is a founder of the test mesh: members' results count (the default mode).
    await testMesh().keyFor(join(base, plan.name))
    const config = buildNodeConfig({
      home: join(base, plan.name),
      mesh: testMesh().file,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: nodes.length === 0 ? [] : [nodes[0]!.listenAddresses()[0]!],
      mdns: false,
      platform: plan.platform,
      slots: plan.slots,
      api: '127.0.0.1:0',
      sandbox: 'bubblewrap',
      quorum: String(NODE_QUORUM)
    })
    const node = await startNode(config, {
      ...(plan.build ? { executor } : {}),
      // Fresh homes: no older copy of the chain to learn from the mesh.
      ownChainTimeoutMs: 0,
      writeApiFile: false,
      warn: () => {}
    })
    teardown(async () => { await node.stop() })
    nodes.push(node)
  }
  const [a, b, c, liar] = nodes as [RunningNode, RunningNode, RunningNode, RunningNode]
  return { a, b, c, liar, all: nodes }
}

/** A copy of examples/hello-c whose test step fails on every builder alike. */
export async function failingJobDir (teardown: Teardown, helloC: string): Promise<string> {
  const dir = await tempDir(teardown, 'buildhaus-e2e-failing-')
  await writeFile(join(dir, 'hello.c'), await readFile(join(helloC, 'hello.c')))
  await writeFile(join(dir, 'buildhaus.json'), JSON.stringify({
    name: 'hello-c (failing test)',
    replicas: 2,
    steps: [
      { name: 'compile', run: 'cc -O2 -o hello hello.c' },
      { name: 'test', run: './hello | grep -q "words it never prints"' }
    ],
    artifacts: ['hello'],
    timeout: 120
  }))
  return dir
}

export function sha256Hex (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * A `result` saying the builder compiled `hello` to `bytes` and the tests
 * passed, for a job it never ran: the lie a dishonest node can tell. The
 * bytes go into its blob store, so it can serve them like a real artifact.
 */
export async function forgeResult (node: RunningNode, job: string, selector: string, bytes: Uint8Array): Promise<void> {
  const stored = await node.blobs.put(bytes)
  const now = Date.now()
  const body: ResultBody = {
    job,
    platform: selector,
    status: 'pass',
    steps: [{ name: 'compile', exit: 0, ms: 140 }, { name: 'test', exit: 0, ms: 60 }],
    log: null,
    logSize: 0,
    artifacts: [{ path: 'hello', sha256: stored.hash, size: stored.size }],
    env: { os: platform(), kernel: release(), arch: arch(), sandbox: 'bubblewrap', tools: {} },
    start: now - 200,
    end: now
  }
  await node.ledger.append('result', body as unknown as Record<string, unknown>)
}

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** Run a `buildhaus-node` command in this process (the same code the binary runs), capturing what it prints. */
export async function cli (args: string[]): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await main(args, {
    stdout: { write: (chunk: string | Uint8Array) => { stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'); return true } },
    stderr: { write: (chunk: string | Uint8Array) => { stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'); return true } },
    env: process.env,
    signal: AbortSignal.timeout(60_000)
  } as never)
  return { code, stdout, stderr }
}

/** A trust directory holding the given keys, one `NAME.pub` file (hex and a comment) per key. */
export async function trustDir (teardown: Teardown, keys: Record<string, string>): Promise<string> {
  const dir = await tempDir(teardown, 'buildhaus-e2e-trust-')
  await mkdir(dir, { recursive: true })
  for (const [name, key] of Object.entries(keys)) await writeFile(join(dir, `${name}.pub`), `${key}  test node ${name}\n`)
  return dir
}

/** GET a path of a node's API as JSON. */
export async function apiJson<T> (node: RunningNode, path: string): Promise<T> {
  const response = await fetch(new URL(path, node.apiUrl), { signal: AbortSignal.timeout(20_000) })
  if (!response.ok) throw new Error(`GET ${path} on ${node.apiUrl} answered ${response.status}: ${await response.text()}`)
  return await response.json() as T
}

/**
 * GET a blob from a node's API (the node fetches it from the mesh if it lacks
 * it). A 404 saying no connected peer could provide it is asked again, as its
 * message tells a user to, until `timeoutMs`. The node dials a holder it is
 * not connected to (test/node/blob-fetch-dial.test.ts), so this covers only
 * a holder whose address has not reached it yet: it once did not dial at all,
 * and this test failed one run in eight. The error at the deadline says what
 * the node last answered.
 */
export async function apiBlob (node: RunningNode, hash: string, timeoutMs = 30_000): Promise<Buffer> {
  let last = ''
  const found = await waitFor(async () => {
    const response = await fetch(new URL(`/api/blobs/${hash}`, node.apiUrl), { signal: AbortSignal.timeout(30_000) })
    if (response.ok) return Buffer.from(await response.arrayBuffer())
    last = `answered ${response.status}: ${await response.text()}`
    if (response.status === 404 && last.includes('try again once a peer that has it is connected')) return undefined
    throw new Error(`GET /api/blobs/${hash} on ${node.apiUrl} ${last}`)
  }, { timeoutMs, intervalMs: 500, what: `GET /api/blobs/${hash} on ${node.apiUrl} to find a peer that has it` }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; it last ${last}`, { cause: err })
  })
  return found
}
