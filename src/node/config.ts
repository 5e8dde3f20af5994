import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { packageRoot } from '../util/package-root.js'
import { multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_LISTEN_ADDRESS } from '../gossip/constants.js'
import { parseBootstrapAddress } from '../gossip/keeper.js'
import { parseMultiaddrOption } from '../gossip/libp2p.js'
import { isCircuit, RELAY_MODES, type RelayMode } from '../gossip/nat/index.js'
import { MAX_ENVIRONMENTS, MAX_PLATFORMS, MAX_SLOTS } from '../gossip/presence/constants.js'
import { environmentNameProblem, HOST_ENVIRONMENT } from '../environments/index.js'
import { UsageError } from '../util/errors.js'
import { resolveHome } from './home/home.js'
import { DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS } from './services/release-pins.js'
import { DEFAULT_MIN_POLL_INTERVAL_S } from './services/watcher.js'
import { defaultSlots, detectPlatforms, isPlatformLabel } from './platform.js'
import { DEFAULT_API_HOST, DEFAULT_API_PORT } from './api-defaults.js'
import { defaultEnvironmentDir, parseEnvironmentCache, parseWholeNumber, ROOT_ENVIRONMENT_DIR } from './option-values.js'

/** Defined in api-defaults.ts, which `join --help` reads without loading this module. */
export { DEFAULT_API_HOST, DEFAULT_API_PORT }
/** Defined in option-values.ts, which the `env` commands read without loading this module (and libp2p with it). */
export { defaultEnvironmentDir, parseEnvironmentCache, parseWholeNumber, ROOT_ENVIRONMENT_DIR }

export const SANDBOX_MODES = ['bubblewrap', 'none'] as const
export type SandboxMode = typeof SANDBOX_MODES[number]

export interface ApiAddress {
  host: string
  port: number
}

/** Everything `startNode` needs, validated. Built from `join`'s flags by `buildNodeConfig`. */
export interface NodeConfig {
  home: string
  /** Multiaddrs to listen on. */
  listen: string[]
  /** Multiaddrs with `/p2p/<peer id>` to join through. */
  bootstrap: string[]
  mdns: boolean
  /** Platform labels this node offers. */
  platforms: string[]
  /** How many builds may run at once; 0 joins the mesh without building. */
  slots: number
  api: ApiAddress
  sandbox: SandboxMode
  /** What jobs the volunteer admits; the admission policy will set these. */
  accepts: { network: boolean, root: boolean }
  /**
   * Whom the node counts: absent, the members of its mesh (the default);
   * `everyone` (today's open behaviour, unsafe on an open network); else an
   * absolute directory of trusted builder keys, which overrides membership.
   */
  trust?: string
  /** The mesh definition file given with `--mesh` (absolute); absent: the home's mesh.json, else keys/mesh.json. */
  mesh?: string
  /** Agreeing distinct builders a platform needs; absent: each platform's replica count. */
  quorum?: number
  /** Bound of the blob store (sources, logs, artifacts), least recently used evicted first. */
  blobCacheMb: number
  /** Environments this node offers (made at start if missing); each is also one of `platforms`. */
  environments: string[]
  /** Where environments are kept (default `<home>/environments`; several nodes may share one). */
  environmentDir: string
  /** Bound of the environment cache, least recently used removed first (never one in use). */
  environmentCacheMb: number
  /** Serve as a circuit relay for peers behind NAT: `auto` while this node has a public address. */
  relay: RelayMode
  /** Ask the router for a port mapping (UPnP IGD). */
  upnp: boolean
  /** Addresses announced besides the ones libp2p finds (a public address whose port the router forwards). */
  announce: string[]
  /** A private mesh's swarm key file: only nodes holding the same key can connect. */
  swarmKey?: string,
  /** Days a builder keeps the artifacts of verified platforms it agreed on pinned (0: not at all). */
  retentionDays: number
  /** Polls watches when designated (`--no-poll`: never). */
  polls: boolean
  /** Addresses or CIDR ranges watches may reach although private or loopback (`--watch-allow`). */
  watchAllow: string[]
  /** Least seconds between two polls of one watch, whatever it asks (`--watch-min-interval`). */
  watchMinIntervalS: number
}

/** Default bound of the blob store. */
export const DEFAULT_BLOB_CACHE_MB = 4096

/** `join`'s flags as the CLI parses them (strings, not yet checked). */
export interface JoinFlags {
  home?: string
  listen: string[]
  bootstrap: string[]
  mdns: boolean
  platform: string[]
  slots?: string
  api?: string
  sandbox?: string
  trust?: string
  mesh?: string
  quorum?: string
  blobCache?: string
  /** `--environment NAME`, repeatable. */
  environment?: string[]
  environmentDir?: string
  environmentCache?: string
  relay?: string
  upnp?: boolean
  announce?: string[]
  swarmKey?: string,
  retainDays?: string
  poll?: boolean
  watchAllow?: string[]
  watchMinInterval?: string
  /** Used when no --bootstrap is given (the lines of keys/bootstrap.txt). */
  defaultBootstrap?: string[]
}

/**
 * The well-known bootstrap peers shipped with buildhaus: one multiaddr with
 * `/p2p/<peer id>` a line in keys/bootstrap.txt; `#` starts a comment.
 */
export function shippedBootstrapPeers (): string[] {
  let text: string
  try {
    text = readFileSync(join(packageRoot(), 'keys', 'bootstrap.txt'), 'utf8')
  } catch {
    return []
  }
  return text.split('\n').map((line) => line.replace(/#.*/, '').trim()).filter((line) => line !== '')
}

/** Check every flag up front: a typo is a UsageError (exit 2) before anything on disk is touched. */
export function buildNodeConfig (flags: JoinFlags, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const listen = flags.listen.length > 0 ? flags.listen : [DEFAULT_LISTEN_ADDRESS]
  listen.forEach(checkListenAddress)
  // No --bootstrap: the well-known peers shipped in keys/bootstrap.txt (if any).
  const bootstrap = flags.bootstrap.length > 0 ? flags.bootstrap : (flags.defaultBootstrap ?? [])
  bootstrap.forEach((addr) => parseBootstrapAddress(addr))
  const home = resolveHome(flags.home, env)
  const sandbox = parseSandbox(flags.sandbox ?? 'bubblewrap')
  const environments = parseEnvironments(flags.environment ?? [])
  if (environments.length > 0 && sandbox === 'none') {
    throw new UsageError('--environment needs the bubblewrap sandbox (an environment becomes the build\'s root file system); drop --sandbox none or the environments')
  }
  const platforms = [...new Set([...parsePlatforms(flags.platform), ...environments])]
  if (platforms.length > MAX_PLATFORMS) throw new UsageError(`the platforms and environments make ${platforms.length} labels; a node offers at most ${MAX_PLATFORMS}`)
  return {
    home,
    listen,
    bootstrap: [...new Set(bootstrap)],
    mdns: flags.mdns,
    platforms,
    slots: flags.slots === undefined ? defaultSlots() : parseSlots(flags.slots),
    api: flags.api === undefined ? { host: DEFAULT_API_HOST, port: DEFAULT_API_PORT } : parseApiAddress(flags.api),
    sandbox,
    accepts: { network: false, root: false },
    ...(flags.trust !== undefined ? { trust: flags.trust === 'everyone' ? 'everyone' : resolve(flags.trust) } : {}),
    ...(flags.mesh !== undefined ? { mesh: resolve(flags.mesh) } : {}),
    ...(flags.quorum !== undefined ? { quorum: parseWholeNumber('--quorum', flags.quorum, 1, 16, 'agreeing builders a platform needs') } : {}),
    blobCacheMb: flags.blobCache === undefined ? DEFAULT_BLOB_CACHE_MB : parseWholeNumber('--blob-cache', flags.blobCache, 16, 16 * 1024 * 1024, 'megabytes the blob store may hold'),
    environments,
    environmentDir: flags.environmentDir !== undefined ? resolve(flags.environmentDir) : defaultEnvironmentDir(home),
    environmentCacheMb: parseEnvironmentCache(flags.environmentCache),
    relay: parseRelayMode(flags.relay ?? 'auto'),
    upnp: flags.upnp ?? false,
    announce: [...new Set((flags.announce ?? []).map(checkAnnounceAddress))],
    ...(flags.swarmKey !== undefined ? { swarmKey: resolve(flags.swarmKey) } : {}),
    polls: flags.poll ?? true,
    watchAllow: flags.watchAllow ?? [],
    watchMinIntervalS: flags.watchMinInterval === undefined ? DEFAULT_MIN_POLL_INTERVAL_S : parseWholeNumber('--watch-min-interval', flags.watchMinInterval, 1, 86_400, 'seconds between two polls of one watch at least'),
    retentionDays: flags.retainDays === undefined ? DEFAULT_RETENTION_DAYS : parseWholeNumber('--retain-days', flags.retainDays, 0, MAX_RETENTION_DAYS, 'days verified artifacts this node built stay pinned')
  }
}



/** `--environment NAME` (repeatable): checked names, each once. */
export function parseEnvironments (names: string[]): string[] {
  for (const name of names) {
    if (name === HOST_ENVIRONMENT) throw new UsageError(`--environment ${HOST_ENVIRONMENT}: every node builds on its host already; name environments such as debian-12`)
    const problem = environmentNameProblem(name)
    if (problem !== undefined) throw new UsageError(`--environment: ${problem}`)
  }
  const unique = [...new Set(names)]
  if (unique.length > MAX_ENVIRONMENTS) throw new UsageError(`--environment was given ${unique.length} times; a node offers at most ${MAX_ENVIRONMENTS} environments`)
  return unique
}


export function parseRelayMode (text: string): RelayMode {
  if (!(RELAY_MODES as readonly string[]).includes(text)) {
    throw new UsageError(`--relay ${JSON.stringify(text)} is not a relay mode; use auto (the default: relay for others while this node has a public address), on, or off`)
  }
  return text as RelayMode
}

/** An announced address is where others dial this node directly: a TCP address, not a relayed one. */
export function checkAnnounceAddress (text: string): string {
  parseMultiaddrOption(text, '--announce')
  const ma = multiaddr(text)
  if (isCircuit(ma) || !ma.getComponents().some((c) => c.name === 'tcp')) {
    throw new UsageError(`--announce ${text} is not a direct TCP address; write the public address and port your router forwards to this machine, like /ip4/203.0.113.7/tcp/4710`)
  }
  return text
}

/** A node listens on TCP, its only transport. */
export function checkListenAddress (text: string): void {
  parseMultiaddrOption(text, '--listen')
  if (!multiaddr(text).getComponents().some((c) => c.name === 'tcp')) {
    throw new UsageError(`--listen ${text} is not a TCP address, the only transport a node speaks; write it like /ip4/0.0.0.0/tcp/4710`)
  }
}

export function parsePlatforms (labels: string[]): string[] {
  if (labels.length === 0) return detectPlatforms()
  for (const label of labels) {
    if (!isPlatformLabel(label)) {
      throw new UsageError(`--platform ${JSON.stringify(label)} is not a platform label; use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit (e.g. linux-x64 or debian-12)`)
    }
  }
  const unique = [...new Set(labels)]
  if (unique.length > MAX_PLATFORMS) throw new UsageError(`--platform was given ${unique.length} times; a node offers at most ${MAX_PLATFORMS} labels`)
  return unique
}

export function parseSlots (text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > MAX_SLOTS) {
    throw new UsageError(`--slots ${JSON.stringify(text)} is not a whole number from 0 to ${MAX_SLOTS}; give how many builds may run at once (0 joins without building)`)
  }
  return Number(text)
}

/** `HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback). Port 0 asks the system for a free port. */
export function parseApiAddress (text: string): ApiAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text)
  const host = match?.[1] ?? match?.[2]
  const port = match?.[3] !== undefined ? Number(match[3]) : NaN
  if (match === null || host === undefined || !(port >= 0 && port <= 65535) || (match[1] !== undefined && isIP(host) !== 6)) {
    throw new UsageError(`--api ${JSON.stringify(text)} is not HOST:PORT; write it like 127.0.0.1:${DEFAULT_API_PORT} (or [::1]:${DEFAULT_API_PORT}, or 0.0.0.0:${DEFAULT_API_PORT} to serve other machines)`)
  }
  if (host !== '' && isIP(host) === 0 && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(host)) {
    throw new UsageError(`--api ${JSON.stringify(text)} names the host ${JSON.stringify(host)}, which is neither an IP address nor a host name; write it like 127.0.0.1:${DEFAULT_API_PORT}`)
  }
  return { host: host === '' ? DEFAULT_API_HOST : host, port }
}


export function parseSandbox (text: string): SandboxMode {
  if (!(SANDBOX_MODES as readonly string[]).includes(text)) {
    throw new UsageError(`--sandbox ${JSON.stringify(text)} is not a sandbox; use --sandbox bubblewrap (the default) or --sandbox none (no isolation, not recommended)`)
  }
  return text as SandboxMode
}
