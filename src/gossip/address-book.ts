import type { Connection, ConnectionGater, IdentifyResult, PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { authorOfPeerId } from '../crypto/peer-id.js'
import { componentLogger } from '../util/logger.js'
import {
  BOOK_MAX_ADDRESSES_PER_PEER, BOOK_MAX_PEERS, DIAL_BURST, DIALS_PER_SECOND, PEER_DIAL_WINDOW_MS, PEER_DIALS_PER_WINDOW
} from './constants.js'

const log = componentLogger('gossip:address-book')

/**
 * Where an address came from, from most to least trusted:
 * - `bootstrap`: configured by the volunteer (`--bootstrap`); always dialable, never budgeted.
 * - `proven`: this node dialed the peer there and the peer proved its key (Noise): re-dialable.
 * - `discovered`: multicast DNS on the local network (`--mdns`, opt-in): re-dialable.
 * - `observed`: the peer told identify it listens there, on the very IP its
 *   authenticated connection to us came from (the IP is a fact, the port its
 *   claim about its own host): re-dialable, so that a peer that only ever
 *   dialed us can be found again after it restarts.
 * - `introduced`: a peer this node trusts (a bootstrap peer, or a member) proved or observed it.
 * - `relayed`: identify over a relayed connection with the peer (authenticated
 *   end to end) says it listens there, on a public address: what hole
 *   punching dials. Never a loopback or private address.
 * - `announced`: a member's heartbeat says so.
 * The last three are dialed once: a dial that succeeds makes the address
 * proven, one that fails is not tried again until they vouch for it anew.
 * An address a stranger merely claims (a stranger's heartbeat, identify on
 * another IP, an introduction from a stranger) is never recorded at all.
 */
export type AddressSource = 'bootstrap' | 'proven' | 'discovered' | 'observed' | 'introduced' | 'relayed' | 'announced'

const ONCE: ReadonlySet<AddressSource> = new Set(['introduced', 'relayed', 'announced'])
/** Sources whose addresses stay dialable after a failed dial: the peer can be found there again after it restarts. */
export const REDIALABLE: ReadonlySet<AddressSource> = new Set(['bootstrap', 'proven', 'discovered', 'observed'])
const RANK: Record<AddressSource, number> = { bootstrap: 6, proven: 5, discovered: 4, observed: 3, introduced: 2, relayed: 1, announced: 0 }

interface KnownAddress {
  /** The transport address, without `/p2p/<peer id>`. */
  text: string
  source: AddressSource
  /** A once-only address that was dialed (and has not been proven since). */
  tried: boolean
  at: number
}

interface PeerEntry {
  peerId: string
  addresses: Map<string, KnownAddress>
  bootstrap: boolean
  /** Start of the current per-peer dial window, and the addresses allowed in it. */
  windowStart: number
  windowDials: number
  touched: number
}

/** What the book listens to and asks of libp2p (a libp2p node satisfies it). */
export interface AddressBookComponents {
  addEventListener (type: 'connection:open', listener: (event: CustomEvent<Connection>) => void): void
  addEventListener (type: 'peer:identify', listener: (event: CustomEvent<IdentifyResult>) => void): void
  addEventListener (type: 'peer:discovery', listener: (event: CustomEvent<PeerInfo>) => void): void
  removeEventListener (type: 'connection:open', listener: (event: CustomEvent<Connection>) => void): void
  removeEventListener (type: 'peer:identify', listener: (event: CustomEvent<IdentifyResult>) => void): void
  removeEventListener (type: 'peer:discovery', listener: (event: CustomEvent<PeerInfo>) => void): void
  getConnections (peerId?: PeerId): Connection[]
}

export interface AddressBookInit {
  /** Bootstrap multiaddrs, each ending in `/p2p/<peer id>`. */
  bootstrap?: string[]
  /** Record addresses of peers found by multicast DNS (`--mdns`). */
  discovery?: boolean
  /**
   * Whether an author (hex key) is a member of the mesh: members introduce
   * peers and their heartbeats' addresses are dialed (once); strangers are
   * evicted first. Injected by the node (membership lives in a higher layer);
   * default: nobody is.
   */
  isMember?: (author: string) => boolean
  maxPeers?: number
  maxAddressesPerPeer?: number
  /** Dials (one per address) allowed at once, and refilled per second, over all peers but bootstrap ones. */
  dialBurst?: number
  dialsPerSecond?: number
  /** Per peer: at most `peerDialsPerWindow` addresses dialed in any `peerDialWindowMs`. */
  peerDialsPerWindow?: number
  peerDialWindowMs?: number
  now?: () => number
}

export interface AddressBookStats {
  peers: number
  /** Addresses the gate let through, and those it refused (unseen, tried once already, or over a budget). */
  allowed: number
  denied: number
  deniedUnseen: number
  deniedBudget: number
}

/**
 * The addresses this node may dial, and the gate (libp2p's connection gater)
 * that holds every dial to them: the keeper's, a blob fetch by peer id,
 * gossipsub's peer exchange, anything libp2p dials on its own. An address is
 * dialable only when this node saw it work, observed it on a real connection,
 * was given it by the volunteer, or was introduced to it by a peer it trusts
 * (see AddressSource); a heartbeat from a stranger can make it dial nothing.
 * Dials are budgeted per peer and overall, so that even trusted sources
 * cannot turn the node into a port scanner. Bounded: at most `maxPeers`
 * peers (strangers not connected are evicted first), each with at most
 * `maxAddressesPerPeer` addresses.
 */
export class AddressBook {
  private readonly peers = new Map<string, PeerEntry>()
  private readonly isMember: (author: string) => boolean
  private readonly discovery: boolean
  private readonly maxPeers: number
  private readonly maxAddresses: number
  private readonly dialBurst: number
  private readonly dialsPerSecond: number
  private readonly peerDialsPerWindow: number
  private readonly peerDialWindowMs: number
  private readonly now: () => number
  private tokens: number
  private refilledAt: number
  private components?: AddressBookComponents
  private readonly counters = { allowed: 0, denied: 0, deniedUnseen: 0, deniedBudget: 0 }

  /** For libp2p's `connectionGater` option: every dial of every address passes here. */
  readonly gater: ConnectionGater = {
    denyDialMultiaddr: (address: Multiaddr) => this.deny(address)
  }

  constructor (init: AddressBookInit = {}) {
    this.isMember = init.isMember ?? (() => false)
    this.discovery = init.discovery ?? false
    this.maxPeers = init.maxPeers ?? BOOK_MAX_PEERS
    this.maxAddresses = init.maxAddressesPerPeer ?? BOOK_MAX_ADDRESSES_PER_PEER
    this.dialBurst = init.dialBurst ?? DIAL_BURST
    this.dialsPerSecond = init.dialsPerSecond ?? DIALS_PER_SECOND
    this.peerDialsPerWindow = init.peerDialsPerWindow ?? PEER_DIALS_PER_WINDOW
    this.peerDialWindowMs = init.peerDialWindowMs ?? PEER_DIAL_WINDOW_MS
    this.now = init.now ?? Date.now
    this.tokens = this.dialBurst
    this.refilledAt = this.now()
    for (const text of init.bootstrap ?? []) {
      const split = splitPeer(multiaddr(text))
      if (split.peer === undefined) continue
      this.entry(split.peer, true).bootstrap = true
      this.record(split.peer, split.transport, 'bootstrap')
    }
  }

  /** Start listening to libp2p: outbound connections prove addresses, identify reports observed ones. */
  start (components: AddressBookComponents): void {
    this.components = components
    components.addEventListener('connection:open', this.onConnection)
    components.addEventListener('peer:identify', this.onIdentify)
    if (this.discovery) components.addEventListener('peer:discovery', this.onDiscovery)
  }

  stop (): void {
    this.components?.removeEventListener('connection:open', this.onConnection)
    this.components?.removeEventListener('peer:identify', this.onIdentify)
    this.components?.removeEventListener('peer:discovery', this.onDiscovery)
    this.components = undefined
  }

  get stats (): AddressBookStats {
    return { peers: this.peers.size, ...this.counters }
  }

  /** Whether this peer may introduce others to us: a bootstrap peer (the volunteer chose it) or a member. */
  isIntroducer (peerId: PeerId | string): boolean {
    const key = peerId.toString()
    return this.peers.get(key)?.bootstrap === true || this.member(key)
  }

  /** Addresses of `peerId` the gate would let through now (budgets aside), each ending in its /p2p/ id, best first. */
  dialable (peerId: PeerId | string): Multiaddr[] {
    const entry = this.peers.get(peerId.toString())
    if (entry === undefined) return []
    return [...entry.addresses.values()]
      .filter((known) => !(ONCE.has(known.source) && known.tried))
      .sort((a, b) => RANK[b.source] - RANK[a.source] || b.at - a.at)
      .map((known) => multiaddr(`${known.text}/p2p/${entry.peerId}`))
  }

  /**
   * Every address the book holds for `peerId`, with where it came from and
   * whether a once-only address was used up: for diagnostics, and for tests
   * that must know an address survives a failed dial (`REDIALABLE`).
   */
  known (peerId: PeerId | string): Array<{ address: string, source: AddressSource, tried: boolean }> {
    const entry = this.peers.get(peerId.toString())
    return [...(entry?.addresses.values() ?? [])].map((k) => ({ address: k.text, source: k.source, tried: k.tried }))
  }

  /** A heartbeat's addresses: kept (to be dialed once) only when its sender is a member. */
  announced (peerId: PeerId | string, addresses: string[]): void {
    const key = peerId.toString()
    if (!this.member(key)) return
    for (const text of addresses.slice(0, this.maxAddresses)) {
      const transport = transportOf(text, key)
      if (transport !== undefined && usable(transport)) this.record(key, transport, 'announced')
    }
  }

  /**
   * What a trusted peer (`via`, over its connection) said it observed of
   * others. Ignored unless `via` is an introducer; an address of a narrower
   * scope than the introducer's own (loopback, a private network) is dropped:
   * a peer reached over the internet must not send us into our own LAN.
   */
  introduced (via: Connection, peers: Array<{ id: string, addrs: string[] }>): number {
    if (!this.isIntroducer(via.remotePeer)) return 0
    const viaScope = scopeOf(via.remoteAddr)
    let added = 0
    for (const { id, addrs } of peers) {
      if (id === via.remotePeer.toString()) continue
      for (const text of addrs.slice(0, this.maxAddresses)) {
        const transport = transportOf(text, id)
        if (transport === undefined || !usable(transport)) continue
        if (SCOPE_RANK[scopeOf(transport)] < SCOPE_RANK[viaScope]) continue
        if (this.record(id, transport, 'introduced')) added++
      }
    }
    return added
  }

  /**
   * What this node can vouch for to a peer that asks: the peers it is connected
   * to now (not through a relay), each with the addresses it proved or
   * observed itself, at most `limit`, in random order. Never what it was only
   * told by others.
   */
  introductions (limit: number, except?: PeerId): Array<{ id: string, addrs: string[] }> {
    const connected = new Set<string>()
    for (const connection of this.components?.getConnections() ?? []) {
      if (connection.limits === undefined) connected.add(connection.remotePeer.toString())
    }
    if (except !== undefined) connected.delete(except.toString())
    const result: Array<{ id: string, addrs: string[] }> = []
    for (const id of shuffled([...connected])) {
      const entry = this.peers.get(id)
      if (entry === undefined) continue
      const addrs = [...entry.addresses.values()]
        .filter((known) => known.source === 'proven' || known.source === 'observed' || known.source === 'bootstrap')
        .map((known) => known.text)
      if (addrs.length === 0) continue
      result.push({ id, addrs })
      if (result.length >= limit) break
    }
    return result
  }

  /** Whether the peer's key is a member's (the injected isMember; false for anything that is not a peer id). */
  isMemberPeer (peerId: PeerId | string): boolean {
    return this.member(peerId.toString())
  }

  private member (peerId: string): boolean {
    try {
      return this.isMember(authorOfPeerId(peerIdFromString(peerId)))
    } catch {
      return false
    }
  }

  private readonly onConnection = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    // Only a connection we made proves an address: an inbound one comes from an ephemeral port.
    if (connection.direction !== 'outbound' || connection.limits !== undefined) return
    const { peer, transport } = splitPeer(connection.remoteAddr)
    this.record(peer ?? connection.remotePeer.toString(), transport, 'proven')
  }

  private readonly onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    const { peerId, listenAddrs, connection } = event.detail
    if (connection.limits !== undefined || isCircuitAddress(connection.remoteAddr)) {
      // Through a relay: no IP of its own to check the claim against; only public addresses, once each.
      for (const address of listenAddrs.slice(0, this.maxAddresses * 2)) {
        const { transport, relay } = splitPeer(address)
        if (relay === undefined && usable(transport) && scopeOf(transport) === 'public') this.record(peerId.toString(), transport, 'relayed')
      }
      return
    }
    const remote = hostOf(connection.remoteAddr)
    if (remote === undefined) return
    for (const address of listenAddrs.slice(0, this.maxAddresses * 2)) {
      const { transport } = splitPeer(address)
      // Where the connection came from is a fact; the port is its claim, on its own host only.
      if (hostOf(transport) === remote && usable(transport)) this.record(peerId.toString(), transport, 'observed')
    }
  }

  private readonly onDiscovery = (event: CustomEvent<PeerInfo>): void => {
    const { id, multiaddrs } = event.detail
    for (const address of multiaddrs.slice(0, this.maxAddresses)) {
      const { transport } = splitPeer(address)
      if (usable(transport)) this.record(id.toString(), transport, 'discovered')
    }
  }

  /** Note an address; a better source replaces a worse one, a proof resets a once-only address. Returns whether anything changed. */
  private record (peerId: string, transport: Multiaddr, source: AddressSource): boolean {
    const text = transport.toString()
    const entry = this.entry(peerId, false)
    entry.touched = this.now()
    const known = entry.addresses.get(text)
    if (known !== undefined) {
      if (RANK[source] < RANK[known.source]) return false
      // Vouched for anew (a fresh introduction, a new identify): worth one more try.
      const changed = known.source !== source || known.tried
      known.source = source
      known.tried = false
      known.at = this.now()
      return changed
    }
    entry.addresses.set(text, { text, source, tried: false, at: this.now() })
    if (entry.addresses.size > this.maxAddresses) {
      const worst = [...entry.addresses.values()].sort((a, b) => RANK[a.source] - RANK[b.source] || a.at - b.at)[0]!
      entry.addresses.delete(worst.text)
    }
    log('%s: %s %s', source, peerId, text)
    return entry.addresses.has(text)
  }

  private entry (peerId: string, bootstrap: boolean): PeerEntry {
    let entry = this.peers.get(peerId)
    if (entry === undefined) {
      entry = { peerId, addresses: new Map(), bootstrap, windowStart: 0, windowDials: 0, touched: this.now() }
      this.peers.set(peerId, entry)
      if (this.peers.size > this.maxPeers) this.evict(peerId)
    }
    return entry
  }

  /** Over the bound: forget a peer we are not connected to, strangers before members, the least recently heard of first. */
  private evict (keep: string): void {
    const connected = new Set((this.components?.getConnections() ?? []).map((c) => c.remotePeer.toString()))
    let victim: PeerEntry | undefined
    let victimIsMember = true
    for (const entry of this.peers.values()) {
      if (entry.bootstrap || entry.peerId === keep || connected.has(entry.peerId)) continue
      const isMember = this.member(entry.peerId)
      if (victim === undefined || (victimIsMember && !isMember) || (victimIsMember === isMember && entry.touched < victim.touched)) {
        victim = entry
        victimIsMember = isMember
      }
    }
    if (victim !== undefined) this.peers.delete(victim.peerId)
  }

  /** The gate. Returns true to refuse a dial of `address`. */
  private deny (address: Multiaddr): boolean {
    const split = splitPeer(address)
    if (split.peer === undefined) return this.refuse(address, 'it names no peer', 'unseen')
    if (split.relay !== undefined) {
      // A relayed address: the relay is dialed (and gated) on its own; let it through if we know the relay at all.
      const relayKnown = this.peers.has(split.relay) || (this.components?.getConnections().some((c) => c.remotePeer.toString() === split.relay) ?? false)
      return relayKnown ? this.pass() : this.refuse(address, 'its relay is unknown', 'unseen')
    }
    const entry = this.peers.get(split.peer)
    const known = entry?.addresses.get(split.transport.toString())
    if (entry === undefined || known === undefined) return this.refuse(address, 'never seen', 'unseen')
    if (known.source === 'bootstrap') return this.pass()
    if (ONCE.has(known.source) && known.tried) return this.refuse(address, 'tried once already', 'unseen')
    const now = this.now()
    if (now - entry.windowStart >= this.peerDialWindowMs) {
      entry.windowStart = now
      entry.windowDials = 0
    }
    if (entry.windowDials >= this.peerDialsPerWindow) return this.refuse(address, 'too many dials to this peer', 'budget')
    this.refill(now)
    if (this.tokens < 1) return this.refuse(address, 'too many dials', 'budget')
    this.tokens--
    entry.windowDials++
    known.tried = true
    return this.pass()
  }

  private refill (now: number): void {
    this.tokens = Math.min(this.dialBurst, this.tokens + (now - this.refilledAt) / 1000 * this.dialsPerSecond)
    this.refilledAt = now
  }

  private pass (): boolean {
    this.counters.allowed++
    return false
  }

  private refuse (address: Multiaddr, why: string, kind: 'unseen' | 'budget'): boolean {
    this.counters.denied++
    if (kind === 'unseen') this.counters.deniedUnseen++
    else this.counters.deniedBudget++
    log('not dialing %a: %s', address, why)
    return true
  }
}

/** A multiaddr split into its transport part and the peer it names (and, for a relayed address, the relay). */
function splitPeer (address: Multiaddr): { transport: Multiaddr, peer?: string, relay?: string } {
  const components = address.getComponents()
  const circuit = components.findIndex((c) => c.name === 'p2p-circuit')
  if (circuit !== -1) {
    const relay = components.slice(0, circuit).findLast((c) => c.name === 'p2p')?.value
    const peer = components.slice(circuit).find((c) => c.name === 'p2p')?.value
    return { transport: address, ...(peer !== undefined ? { peer } : {}), ...(relay !== undefined ? { relay } : {}) }
  }
  const last = components.at(-1)
  if (last?.name !== 'p2p') return { transport: address }
  return { transport: multiaddr(address.toString().slice(0, -`/p2p/${last.value ?? ''}`.length)), ...(last.value !== undefined ? { peer: last.value } : {}) }
}

function isCircuitAddress (address: Multiaddr): boolean {
  return address.getComponents().some((c) => c.name === 'p2p-circuit')
}

/** A text address of `peerId` (with or without its own /p2p/ suffix) as a transport multiaddr; undefined when unparsable or naming another peer. */
function transportOf (text: string, peerId: string): Multiaddr | undefined {
  try {
    const { transport, peer, relay } = splitPeer(multiaddr(text))
    if (relay !== undefined || (peer !== undefined && peer !== peerId)) return undefined
    return transport
  } catch {
    return undefined
  }
}

/** The IP of an /ip4 or /ip6 address (IPv4-mapped IPv6 as IPv4). */
function hostOf (address: Multiaddr): string | undefined {
  const ip = address.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
  if (ip === undefined) return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return (mapped?.[1] ?? ip).toLowerCase()
}

type Scope = 'loopback' | 'private' | 'public' | 'unusable'
const SCOPE_RANK: Record<Scope, number> = { unusable: -1, loopback: 0, private: 1, public: 2 }

/** Where an address leads: this machine, a private network, the internet, or nowhere dialable (unspecified, multicast, DNS names). */
export function scopeOf (address: Multiaddr): Scope {
  const ip = hostOf(address)
  if (ip === undefined) return 'unusable'
  if (ip.includes(':')) {
    if (ip === '::1') return 'loopback'
    if (ip === '::' || ip.startsWith('ff')) return 'unusable'
    if (/^f[cd]/.test(ip) || /^fe[89ab]/.test(ip)) return 'private'
    return 'public'
  }
  const [a = 0, b = 0] = ip.split('.').map(Number)
  if (a === 127) return 'loopback'
  if (a === 0 || a >= 224) return 'unusable'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127)) return 'private'
  return 'public'
}

/** A TCP address on a real IP (no DNS names: they could resolve anywhere later). */
function usable (transport: Multiaddr): boolean {
  return scopeOf(transport) !== 'unusable' && transport.getComponents().some((c) => c.name === 'tcp')
}

function shuffled<T> (items: T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}

/**
 * One connection gater out of two (libp2p takes one): `gater` (e.g. the nat
 * stream's closed-mesh and relay gater) with the address book's dial gate.
 * Every method is the gater's own, except `denyDialMultiaddr`, which refuses
 * what either refuses.
 */
export function withDialGate (gater: ConnectionGater, book: AddressBook): ConnectionGater {
  const dialGate = book.gater.denyDialMultiaddr!
  return new Proxy(gater, {
    get (target, property) {
      if (property === 'denyDialMultiaddr') {
        return async (address: Multiaddr): Promise<boolean> => (await target.denyDialMultiaddr?.(address)) === true || dialGate(address) === true
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

export function createAddressBook (init: AddressBookInit = {}): AddressBook {
  return new AddressBook(init)
}
