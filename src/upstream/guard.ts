import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { UsageError } from '../util/errors.js'
import { ForbiddenAddressError } from './errors.js'

/**
 * Which addresses a watch may make this node fetch from. Watches are
 * written by anyone; without this, a stranger's watch could make every
 * poller read its own loopback services or its LAN. Loopback, private,
 * link-local, carrier-grade NAT, multicast and unspecified addresses are
 * refused unless the operator allowed them (`join --watch-allow CIDR`).
 * Names are resolved once, checked, and the connection goes to the checked
 * address (no second lookup a rebinding DNS could answer differently).
 */
export class AddressPolicy {
  private readonly forbidden = new BlockList()
  private readonly allowed = new BlockList()
  readonly allowList: string[]

  constructor (allow: readonly string[] = []) {
    this.allowList = [...allow]
    for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
      this.forbidden.addSubnet(net, bits, 'ipv4')
    }
    for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) {
      this.forbidden.addSubnet(net, bits, 'ipv6')
    }
    for (const entry of allow) {
      const [net = '', bitsText] = entry.split('/')
      const family = isIP(net)
      const max = family === 6 ? 128 : 32
      const bits = bitsText === undefined ? max : Number(bitsText)
      if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > max) throw new UsageError(`--watch-allow ${JSON.stringify(entry)} is not an address or CIDR range (e.g. 127.0.0.1 or 10.1.0.0/16)`)
      this.allowed.addSubnet(net, bits, family === 6 ? 'ipv6' : 'ipv4')
    }
  }

  /** Whether this node may connect to `address` (an IP literal) for a watch. */
  permits (address: string): boolean {
    const family = isIP(address)
    if (family === 0) return false
    const mapped = family === 6 && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : undefined
    const ip = mapped ?? address
    const type = mapped !== undefined || family === 4 ? 'ipv4' : 'ipv6'
    if (this.allowed.check(ip, type)) return true
    return !this.forbidden.check(ip, type)
  }

  /** Throw ForbiddenAddressError unless `address` is permitted. */
  check (address: string, host: string): void {
    if (!this.permits(address)) {
      throw new ForbiddenAddressError(`${host} is ${address === host ? '' : `at ${address}, `}an address watches may not reach from this node (loopback, private or link-local); its operator can allow it with --watch-allow`)
    }
  }

  /** Resolve `host` (or take it as an IP literal) and return one permitted address. */
  async resolve (host: string): Promise<{ address: string, family: 4 | 6 }> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
    const literal = isIP(bare)
    if (literal !== 0) {
      this.check(bare, host)
      return { address: bare, family: literal as 4 | 6 }
    }
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) => {
      dnsLookup(bare, { all: true }, (err, found) => { if (err !== null) reject(err); else resolve(found) })
    })
    if (addresses.length === 0) throw new ForbiddenAddressError(`${host} has no address`)
    // Every address must be permitted: a name that also resolves inward is refused whole.
    for (const a of addresses) this.check(a.address, host)
    return { address: addresses[0]!.address, family: addresses[0]!.family === 6 ? 6 : 4 }
  }

  /** A `lookup` for node:http(s) that answers only with checked addresses. */
  lookupFunction (): LookupFunction {
    return (hostname, options, callback) => {
      this.resolve(hostname).then(({ address, family }) => {
        if ((options as { all?: boolean }).all === true) (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, [{ address, family }])
        else callback(null, address, family)
      }, (err: NodeJS.ErrnoException) => { callback(err, '', 4) })
    }
  }
}
