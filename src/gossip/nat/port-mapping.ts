import { readFileSync } from 'node:fs'
import { pmpNat, upnpNat, type Gateway, type UPnPNAT } from '@achingbrain/nat-port-mapper'
import type { AbortOptions } from '@libp2p/interface'
import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'

const log = componentLogger('gossip:port-mapping')

/** A NAT-PMP request (the library has no timeout of its own) is abandoned after this long. */
export const NAT_PMP_TIMEOUT_MS = 10_000

/**
 * The port-mapping client of `--upnp`: the routers UPnP discovery finds, and
 * the default gateway asked by NAT-PMP (which libp2p's upnp-nat service does
 * not try by itself). libp2p's service maps the node's port on each gateway
 * that answers; a gateway that does not is logged and left alone.
 */
export function portMappingClient (options: { description: string }): UPnPNAT {
  const upnp = upnpNat({ description: options.description })
  return {
    async * findGateways (search) {
      const router = defaultGateway()
      if (router !== undefined) yield boundedPmpGateway(router)
      yield * upnp.findGateways(search)
    },
    getGateway: async (descriptor: URL, abort?: AbortOptions) => await upnp.getGateway(descriptor, abort)
  }
}

/** NAT-PMP gateway calls, each bounded in time; its socket errors are logged, never thrown at the process. */
function boundedPmpGateway (router: string): Gateway {
  const gateway = pmpNat(router)
  ;(gateway as unknown as { on: (event: string, listener: (err: unknown) => void) => void }).on('error', (err) => {
    log('NAT-PMP with %s: %s', router, describeError(err))
  })
  const bounded = (signal?: AbortSignal): { signal: AbortSignal } => ({ signal: AbortSignal.any([AbortSignal.timeout(NAT_PMP_TIMEOUT_MS), ...(signal !== undefined ? [signal] : [])]) })
  return {
    id: gateway.id,
    host: gateway.host,
    port: gateway.port,
    family: gateway.family,
    stop: async (options) => { await gateway.stop(bounded(options?.signal)) },
    map: async (internalPort, internalHost, options) => await gateway.map(internalPort, internalHost, { ...options, ...bounded(options?.signal) }),
    mapAll: (internalPort, options) => gateway.mapAll(internalPort, { ...options, ...bounded(options?.signal) }),
    unmap: async (internalPort, options) => { await gateway.unmap(internalPort, bounded(options?.signal)) },
    externalIp: async (options) => await gateway.externalIp(bounded(options?.signal))
  }
}

/** The IPv4 default gateway from the kernel's routing table (Linux); undefined elsewhere or without one. */
export function defaultGateway (routeTable?: string): string | undefined {
  let text = routeTable
  if (text === undefined) {
    try {
      text = readFileSync('/proc/net/route', 'utf8')
    } catch {
      return undefined
    }
  }
  for (const line of text.split('\n').slice(1)) {
    const [, destination, gateway] = line.trim().split(/\s+/)
    if (destination !== '00000000' || gateway === undefined || !/^[0-9A-Fa-f]{8}$/.test(gateway) || gateway === '00000000') continue
    // Little-endian hex: 0101A8C0 is 192.168.1.1.
    const bytes = gateway.match(/../g)!.map((h) => parseInt(h, 16)).reverse()
    return bytes.join('.')
  }
  return undefined
}
