import { execFile } from 'node:child_process'
import { open, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NodeProcess, startNodeProcess, type NodeProcessOptions } from './cluster.js'
import { tempDir } from './temp-home.js'

/**
 * Network namespaces for fault tests: each node in its own namespace, all
 * joined through a "switch" namespace that holds two bridges. A partition
 * moves some nodes' switch-side cables to the second bridge; healing moves
 * them back. Each node also has a management cable to the root namespace,
 * so the test reaches every node's API even while it is cut off.
 *
 *   root ns ── bhXX-mN (10.78.XX.4N+1/30) ═══ mgmt (10.78.XX.4N+2/30) ┐
 *                                                                     node ns bhXX-nN
 *   switch ns bhXX-sw: br0, br1 ── bhXX-vN ═══ eth0 (10.77.0.N+1/24) ┘
 *
 * XX is the lab's id (a byte, in hex), claimed with an exclusive marker file,
 * so test files running at once never share names or management subnets;
 * the data subnet lives inside the lab and cannot collide with anything.
 * Only these namespaces and loopback are ever used.
 */

const run = promisify(execFile)

const PREFIX = 'bh'
const MARKER_DIR = tmpdir()
/** Nodes per lab: four addresses of 10.78.XX.0/24 each. */
export const MAX_LAB_NODES = 63
/** Where nodes listen for peers, and serve their API, inside their namespace. */
export const LAB_P2P_PORT = 4710
export const LAB_API_PORT = 4711

type Teardown = (fn: () => unknown) => void

export interface Support {
  ok: boolean
  /** Why not, in one sentence (printed when tests are skipped). */
  reason?: string
}

async function ip (args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 10_000 })
  return stdout
}

let netnsSupport: Promise<Support> | undefined

/** Can this run make network namespaces and veth pairs (root, `ip netns`)? Probed once. */
export async function probeNetns (): Promise<Support> {
  netnsSupport ??= (async (): Promise<Support> => {
    if (process.platform !== 'linux') return { ok: false, reason: 'network namespaces need Linux' }
    if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root (run the suite as root to include the partition tests)' }
    const probe = `${PREFIX}probe${process.pid % 100_000}`
    try {
      await ip(['netns', 'add', probe])
      await ip(['-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'])
      return { ok: true }
    } catch (err) {
      return { ok: false, reason: `\`ip netns\` does not work here: ${firstLine(err)}` }
    } finally {
      await ip(['netns', 'del', probe]).catch(() => {})
    }
  })()
  return await netnsSupport
}

let netemSupport: Promise<Support> | undefined

/** Does the kernel have the netem qdisc (latency and loss injection)? Probed once, inside a scratch namespace. */
export async function probeNetem (): Promise<Support> {
  netemSupport ??= (async (): Promise<Support> => {
    const netns = await probeNetns()
    if (!netns.ok) return netns
    const probe = `${PREFIX}probe${process.pid % 100_000}q`
    try {
      await ip(['netns', 'add', probe])
      await ip(['-n', probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'])
      await ip(['-n', probe, 'link', 'set', 'p0', 'up'])
      await run('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'p0', 'root', 'netem', 'delay', '10ms'], { timeout: 10_000 })
      return { ok: true }
    } catch (err) {
      return { ok: false, reason: `tc netem is not available (the kernel lacks sch_netem?): ${firstLine(err)}` }
    } finally {
      await ip(['netns', 'del', probe]).catch(() => {})
    }
  })()
  return await netemSupport
}

/** One node's place in the lab. */
export interface LabNode {
  index: number
  /** Its namespace. */
  ns: string
  /** Its address on the lab's switch. */
  ip: string
  /** The switch-side end of its cable (moved between bridges to partition). */
  switchPort: string
  /** Its API address, reachable from the root namespace through the management cable. */
  apiHost: string
  /** `--listen` for `join`. */
  listen: string
  /** Prefix that runs a command inside its namespace. */
  wrapper: string[]
}

/** A lab of `size` node namespaces around one switch; destroyed at teardown. */
export class NetLab {
  readonly id: string
  readonly nodes: LabNode[]
  readonly switchNs: string
  private destroyed = false

  private constructor (id: number, size: number) {
    this.id = id.toString(16).padStart(2, '0')
    this.switchNs = `${PREFIX}${this.id}-sw`
    this.nodes = Array.from({ length: size }, (_, index) => ({
      index,
      ns: `${PREFIX}${this.id}-n${index}`,
      ip: `10.77.0.${index + 1}`,
      switchPort: `${PREFIX}${this.id}-v${index}`,
      apiHost: `10.78.${id}.${4 * index + 2}`,
      listen: `/ip4/10.77.0.${index + 1}/tcp/${LAB_P2P_PORT}`,
      wrapper: ['ip', 'netns', 'exec', `${PREFIX}${this.id}-n${index}`]
    }))
  }

  /**
   * Build a lab: claim an id, clear what crashed earlier runs left behind,
   * make the switch and one namespace per node. Registered for teardown
   * before anything is created, so a failure half-way still cleans up.
   */
  static async create (teardown: Teardown, options: { size: number }): Promise<NetLab> {
    if (options.size < 1 || options.size > MAX_LAB_NODES) throw new Error(`a lab holds 1 to ${MAX_LAB_NODES} nodes, not ${options.size}`)
    await removeLeftovers()
    const id = await claimLabId()
    const lab = new NetLab(id, options.size)
    teardown(async () => { await lab.destroy() })
    const sw = lab.switchNs
    await ip(['netns', 'add', sw])
    await ip(['-n', sw, 'link', 'set', 'lo', 'up'])
    for (const bridge of ['br0', 'br1']) {
      await ip(['-n', sw, 'link', 'add', bridge, 'type', 'bridge'])
      await ip(['-n', sw, 'link', 'set', bridge, 'up'])
    }
    for (const node of lab.nodes) {
      const mgmt = `${PREFIX}${lab.id}-m${node.index}`
      await ip(['netns', 'add', node.ns])
      await ip(['-n', node.ns, 'link', 'set', 'lo', 'up'])
      // The data cable: eth0 in the node, its peer on the switch's first bridge.
      await ip(['link', 'add', node.switchPort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns])
      await ip(['link', 'set', node.switchPort, 'netns', sw])
      await ip(['-n', sw, 'link', 'set', node.switchPort, 'master', 'br0', 'up'])
      await ip(['-n', node.ns, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0'])
      await ip(['-n', node.ns, 'link', 'set', 'eth0', 'up'])
      // The management cable: the root namespace reaches the node's API, whatever the switch does.
      await ip(['link', 'add', mgmt, 'type', 'veth', 'peer', 'name', 'mgmt', 'netns', node.ns])
      await ip(['addr', 'add', `10.78.${id}.${4 * node.index + 1}/30`, 'dev', mgmt])
      await ip(['link', 'set', mgmt, 'up'])
      await ip(['-n', node.ns, 'addr', 'add', `${node.apiHost}/30`, 'dev', 'mgmt'])
      await ip(['-n', node.ns, 'link', 'set', 'mgmt', 'up'])
    }
    return lab
  }

  /** Put the nodes of `side` on the second bridge: they reach each other, not the rest. */
  async partition (side: number[]): Promise<void> {
    const cut = new Set(side)
    for (const node of this.nodes) {
      await ip(['-n', this.switchNs, 'link', 'set', node.switchPort, 'master', cut.has(node.index) ? 'br1' : 'br0'])
    }
  }

  /** Every node back on the first bridge. */
  async heal (): Promise<void> {
    await this.partition([])
  }

  /** Kill whatever still runs in the lab's namespaces, delete them, release the id. Idempotent. */
  async destroy (): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    await removeLab(this.id)
  }
}

/**
 * Start one `join` process per lab node, in its namespace: the first alone,
 * the others bootstrapping from it over the switch.
 */
export async function startLabCluster (teardown: Teardown, lab: NetLab, options: { args?: string[], size?: number } = {}): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = []
  for (const place of lab.nodes.slice(0, options.size ?? lab.nodes.length)) {
    const bootstrap = nodes[0] !== undefined ? ['--bootstrap', nodes[0].address] : []
    nodes.push(await startNodeProcess(teardown, labNodeOptions(place, await tempDir(teardown, 'buildhaus-lab-'), [...(options.args ?? []), ...bootstrap])))
  }
  return nodes
}

/** NodeProcess options for a node living in `place` (its namespace, address and API). */
export function labNodeOptions (place: LabNode, home: string, args: string[] = []): NodeProcessOptions {
  return {
    home,
    wrapper: place.wrapper,
    baseArgs: ['--no-mdns', '--listen', place.listen, '--api', `${place.apiHost}:${LAB_API_PORT}`],
    args
  }
}

/** Claim a free lab id with an exclusive marker file holding our pid; its namespaces are ours from then on. */
async function claimLabId (): Promise<number> {
  const start = Math.floor(Math.random() * 256)
  for (let i = 0; i < 256; i++) {
    const id = (start + i) % 256
    try {
      const handle = await open(markerPath(id.toString(16).padStart(2, '0')), 'wx')
      await handle.writeFile(String(process.pid))
      await handle.close()
      return id
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  throw new Error('all 256 lab ids are taken: remove stale buildhaus-netlab-*.pid files from the temp directory')
}

function markerPath (id: string): string {
  return join(MARKER_DIR, `buildhaus-netlab-${id}.pid`)
}

/**
 * Labs whose owner is gone (a crashed or killed test run): their markers name
 * a dead pid, or their namespaces have no marker at all (a marker is written
 * before any namespace, and removed after the last one).
 */
async function removeLeftovers (): Promise<void> {
  const ids = new Set<string>()
  for (const name of await listNamespaces()) {
    const match = new RegExp(`^${PREFIX}([0-9a-f]{2})-`).exec(name)
    if (match !== null) ids.add(match[1]!)
  }
  for (const name of await readdir(MARKER_DIR).catch(() => [] as string[])) {
    const match = /^buildhaus-netlab-([0-9a-f]{2})\.pid$/.exec(name)
    if (match !== null) ids.add(match[1]!)
  }
  for (const id of ids) {
    const owner = Number(await readFile(markerPath(id), 'utf8').catch(() => 'NaN'))
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) continue
    await removeLab(id)
  }
}

async function removeLab (id: string): Promise<void> {
  const names = (await listNamespaces()).filter((n) => n.startsWith(`${PREFIX}${id}-`))
  // A namespace outlives its name while a process runs in it: end the lab's own processes first.
  for (const name of names) {
    const pids = (await ip(['netns', 'pids', name]).catch(() => '')).split('\n').map(Number).filter((pid) => pid > 0)
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
  }
  for (const name of names) await ip(['netns', 'del', name]).catch(() => {})
  await rm(markerPath(id), { force: true })
}

async function listNamespaces (): Promise<string[]> {
  const text = await ip(['netns', 'list']).catch(() => '')
  return text.split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name !== '')
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function firstLine (err: unknown): string {
  const e = err as { stderr?: string, message?: string }
  return (e.stderr ?? e.message ?? String(err)).trim().split('\n')[0] ?? ''
}
