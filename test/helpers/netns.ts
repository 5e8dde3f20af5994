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

/**
 * How a lab router translates addresses (nftables, in the router's namespace):
 * - `masquerade`: Linux's usual home-router NAT; keeps a connection's source
 *   port when it is free (endpoint-independent mapping in practice) and lets
 *   in only replies to connections made from inside (address- and
 *   port-dependent filtering: a "port-restricted cone");
 * - `masquerade-random`: the same with a random source port per connection
 *   (endpoint-dependent mapping: a "symmetric" NAT, as some carrier NATs do).
 */
export type NatKind = 'masquerade' | 'masquerade-random'

/** The "internet" of a NAT lab: a public range (libp2p counts 10/8, 192.168/16, documentation ranges… as private), never routed outside the lab's namespaces. */
export const NAT_LAB_INTERNET = '11.77.0'

/** One node's place in a NAT lab: the public node, or a volunteer behind its router. */
export interface NatPlace {
  index: number
  ns: string
  /** Its own address: public for the public node, on its home network for a volunteer. */
  ip: string
  apiHost: string
  listen: string
  wrapper: string[]
  /** A volunteer's router: its namespace, the public address it translates to, and how. */
  router?: { ns: string, publicIp: string, lanIp: string, nat: NatKind }
}

let nftSupport: Promise<Support> | undefined

/** Namespaces plus nftables' NAT in them (the `nft` program, the kernel's nf_nat). Probed once. */
export async function probeNatLab (): Promise<Support> {
  nftSupport ??= (async (): Promise<Support> => {
    const netns = await probeNetns()
    if (!netns.ok) return netns
    const probe = `${PREFIX}probe${process.pid % 100_000}n`
    try {
      await ip(['netns', 'add', probe])
      await run('ip', ['netns', 'exec', probe, 'nft', 'add table ip nat; add chain ip nat post { type nat hook postrouting priority 100 ; }; add rule ip nat post masquerade'], { timeout: 10_000 })
      return { ok: true }
    } catch (err) {
      return { ok: false, reason: `nftables NAT does not work here (install the nftables package; the kernel needs nf_nat): ${firstLine(err)}` }
    } finally {
      await ip(['netns', 'del', probe]).catch(() => {})
    }
  })()
  return await nftSupport
}

/**
 * A public node and volunteers each behind its own NAT router:
 *
 *   inet ns bhXX-inet: br0 ─┬─ n0 eth0 11.77.0.1        (the public node)
 *                           ├─ r1 eth0 11.77.0.11 ═ NAT ═ r1 eth1 192.168.11.1 ── n1 eth0 192.168.11.2
 *                           └─ r2 eth0 11.77.0.12 ═ NAT ═ r2 eth1 192.168.12.1 ── n2 eth0 192.168.12.2
 *
 * Routers forward and translate (nftables); they have no route to the home
 * networks of others, so a volunteer's private address is unreachable from
 * outside, as at home. Every node also has a management cable to the root
 * namespace for its API (10.78.XX.4N+1/30), as in NetLab.
 */
export class NatLab {
  readonly id: string
  readonly inetNs: string
  readonly publicNode: NatPlace
  readonly volunteers: NatPlace[]
  private destroyed = false

  private constructor (id: number, nats: NatKind[]) {
    this.id = id.toString(16).padStart(2, '0')
    this.inetNs = `${PREFIX}${this.id}-inet`
    const place = (index: number, ipAddress: string, router?: NatPlace['router']): NatPlace => ({
      index,
      ns: `${PREFIX}${this.id}-n${index}`,
      ip: ipAddress,
      apiHost: `10.78.${id}.${4 * index + 2}`,
      listen: `/ip4/${ipAddress}/tcp/${LAB_P2P_PORT}`,
      wrapper: ['ip', 'netns', 'exec', `${PREFIX}${this.id}-n${index}`],
      ...(router !== undefined ? { router } : {})
    })
    this.publicNode = place(0, `${NAT_LAB_INTERNET}.1`)
    this.volunteers = nats.map((nat, i) => place(i + 1, `192.168.${11 + i}.2`, { ns: `${PREFIX}${this.id}-r${i + 1}`, publicIp: `${NAT_LAB_INTERNET}.${11 + i}`, lanIp: `192.168.${11 + i}.1`, nat }))
  }

  get nodes (): NatPlace[] {
    return [this.publicNode, ...this.volunteers]
  }

  /** Build the lab; registered for teardown before anything is created. */
  static async create (teardown: Teardown, options: { nats: NatKind[] }): Promise<NatLab> {
    if (options.nats.length < 1 || options.nats.length > 8) throw new Error(`a NAT lab has 1 to 8 volunteers, not ${options.nats.length}`)
    await removeLeftovers()
    const id = await claimLabId()
    const lab = new NatLab(id, options.nats)
    teardown(async () => { await lab.destroy() })
    const inet = lab.inetNs
    await ip(['netns', 'add', inet])
    await ip(['-n', inet, 'link', 'set', 'lo', 'up'])
    await ip(['-n', inet, 'link', 'add', 'br0', 'type', 'bridge'])
    await ip(['-n', inet, 'link', 'set', 'br0', 'up'])
    const plug = async (ns: string, port: string, address: string): Promise<void> => {
      await ip(['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      await ip(['link', 'set', port, 'netns', inet])
      await ip(['-n', inet, 'link', 'set', port, 'master', 'br0', 'up'])
      await ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up'])
    }
    for (const node of lab.nodes) {
      await ip(['netns', 'add', node.ns])
      await ip(['-n', node.ns, 'link', 'set', 'lo', 'up'])
      const mgmt = `${PREFIX}${lab.id}-m${node.index}`
      await ip(['link', 'add', mgmt, 'type', 'veth', 'peer', 'name', 'mgmt', 'netns', node.ns])
      await ip(['addr', 'add', `10.78.${id}.${4 * node.index + 1}/30`, 'dev', mgmt])
      await ip(['link', 'set', mgmt, 'up'])
      await ip(['-n', node.ns, 'addr', 'add', `${node.apiHost}/30`, 'dev', 'mgmt'])
      await ip(['-n', node.ns, 'link', 'set', 'mgmt', 'up'])
      const router = node.router
      if (router === undefined) {
        await plug(node.ns, `${PREFIX}${lab.id}-p${node.index}`, node.ip)
        continue
      }
      await ip(['netns', 'add', router.ns])
      await ip(['-n', router.ns, 'link', 'set', 'lo', 'up'])
      await plug(router.ns, `${PREFIX}${lab.id}-w${node.index}`, router.publicIp)
      // The home network: one cable from the router's eth1 to the volunteer's eth0.
      await ip(['-n', router.ns, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns])
      await ip(['-n', router.ns, 'addr', 'add', `${router.lanIp}/24`, 'dev', 'eth1'])
      await ip(['-n', router.ns, 'link', 'set', 'eth1', 'up'])
      await ip(['-n', node.ns, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0'])
      await ip(['-n', node.ns, 'link', 'set', 'eth0', 'up'])
      await ip(['-n', node.ns, 'route', 'add', 'default', 'via', router.lanIp])
      await run('ip', ['netns', 'exec', router.ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward'], { timeout: 10_000 })
      await nft(router.ns, [
        'add table ip nat',
        'add chain ip nat pre { type nat hook prerouting priority -100 ; }',
        'add chain ip nat post { type nat hook postrouting priority 100 ; }',
        `add rule ip nat post oifname "eth0" ip saddr ${node.ip.replace(/\.\d+$/, '.0')}/24 masquerade${router.nat === 'masquerade-random' ? ' random' : ''}`
      ])
    }
    return lab
  }

  /** The volunteer's router forwards TCP `port` of its public address to it (what a user, UPnP or NAT-PMP sets up). */
  async forwardPort (volunteer: NatPlace, port = LAB_P2P_PORT): Promise<void> {
    if (volunteer.router === undefined) throw new Error('the public node has no router')
    await nft(volunteer.router.ns, [`add rule ip nat pre iifname "eth0" tcp dport ${port} dnat to ${volunteer.ip}:${port}`])
  }

  /** Kill what runs in the lab, delete its namespaces, release its id. Idempotent. */
  async destroy (): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    await removeLab(this.id)
  }
}

async function nft (ns: string, commands: string[]): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'nft', commands.join('; ')], { timeout: 10_000 })
}

/** NodeProcess options for a node of a NAT lab (its namespace, address and API). */
export function natLabNodeOptions (place: NatPlace, home: string, args: string[] = []): NodeProcessOptions {
  return {
    home,
    wrapper: place.wrapper,
    baseArgs: ['--no-mdns', '--listen', place.listen, '--api', `${place.apiHost}:${LAB_API_PORT}`],
    args
  }
}
