import { networkInterfaces } from 'node:os'
import { isPrivateIp } from '@libp2p/utils'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** Names of this machine's interfaces and their addresses, as node:os gives them. */
export type InterfaceTable = ReturnType<typeof networkInterfaces>

/** A relayed address: `…/p2p/<relay>/p2p-circuit/…`. */
export function isCircuit (address: Multiaddr | string): boolean {
  const ma = typeof address === 'string' ? multiaddr(address) : address
  return ma.getComponents().some((c) => c.name === 'p2p-circuit')
}

/** The IP address an address starts with, if it is an IP address. */
export function hostOf (address: Multiaddr): string | undefined {
  const first = address.getComponents()[0]
  return first !== undefined && (first.name === 'ip4' || first.name === 'ip6') ? first.value : undefined
}

/**
 * An IP address the internet can route to: not private, loopback, link-local,
 * shared (100.64/10) or reserved for documentation. libp2p's own list
 * (`isPrivateIp`), so this node and libp2p's dialers agree on what is public.
 */
export function isPublicIp (ip: string): boolean {
  return isPrivateIp(ip) === false
}

/** A direct (not relayed) address whose IP is public. */
export function isPublicAddress (address: Multiaddr | string): boolean {
  const ma = typeof address === 'string' ? multiaddr(address) : address
  if (isCircuit(ma)) return false
  const host = hostOf(ma)
  return host !== undefined && isPublicIp(host)
}

/**
 * The public IP addresses this node listens on: a listen address's own IP,
 * or for a wildcard (`0.0.0.0`, `::`) every address of every interface. A
 * machine with a public address on an interface (a server, a VPS) can be
 * dialed without any NAT traversal.
 */
export function boundPublicHosts (listen: string[], interfaces: InterfaceTable = networkInterfaces()): string[] {
  const hosts = new Set<string>()
  for (const text of listen) {
    let host: string | undefined
    try {
      host = hostOf(multiaddr(text))
    } catch {
      continue
    }
    if (host === undefined) continue
    if (host === '0.0.0.0' || host === '::') {
      for (const list of Object.values(interfaces)) {
        for (const info of list ?? []) {
          if (info.internal) continue
          if ((host === '0.0.0.0' && info.family !== 'IPv4') || (host === '::' && info.family !== 'IPv6')) continue
          if (isPublicIp(info.address)) hosts.add(info.address)
        }
      }
    } else if (isPublicIp(host)) {
      hosts.add(host)
    }
  }
  return [...hosts]
}

/**
 * Where this node listens on a public address, with its port: announced as
 * is. libp2p announces only addresses something has verified (AutoNAT, UPnP),
 * so without this a server's own public address would be missing from what
 * it tells peers until a peer happened to confirm it. A listen address on
 * port 0 has no known port yet and is left to AutoNAT.
 */
export function boundPublicAddresses (listen: string[], interfaces: InterfaceTable = networkInterfaces()): string[] {
  const out = new Set<string>()
  for (const text of listen) {
    let ma: Multiaddr
    try {
      ma = multiaddr(text)
    } catch {
      continue
    }
    const tcp = ma.getComponents().find((c) => c.name === 'tcp')?.value
    if (tcp === undefined || tcp === '0') continue
    for (const host of boundPublicHosts([text], interfaces)) out.add(`/ip${host.includes(':') ? 6 : 4}/${host}/tcp/${tcp}`)
  }
  return [...out]
}
