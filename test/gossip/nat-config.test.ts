import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { boundPublicAddresses, boundPublicHosts, isCircuit, isPublicAddress, reachabilityOf, servesRelay } from '../../src/gossip/nat/index.js'
import { checkAnnounceAddress, parseRelayMode } from '../../src/node/config.js'

const INTERFACES = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
  eth0: [
    { address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.168.1.20/24' },
    { address: '2a01:4f8:1:2::3', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: '2a01:4f8:1:2::3/64', scopeid: 0 }
  ],
  eth1: [{ address: '5.9.1.2', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:02', internal: false, cidr: '5.9.1.2/24' }]
} as const

describe('where a node can be reached', () => {
  it('finds the public addresses it listens on: its own, or every public interface address behind a wildcard', () => {
    const interfaces = INTERFACES as unknown as Parameters<typeof boundPublicHosts>[1]
    expect(boundPublicHosts(['/ip4/0.0.0.0/tcp/4710'], interfaces)).toEqual(['5.9.1.2'])
    expect(boundPublicHosts(['/ip6/::/tcp/4710'], interfaces)).toEqual(['2a01:4f8:1:2::3'])
    expect(boundPublicHosts(['/ip4/192.168.1.20/tcp/4710', '/ip4/127.0.0.1/tcp/4710'], interfaces)).toEqual([])
    expect(boundPublicAddresses(['/ip4/0.0.0.0/tcp/4710', '/ip6/::/tcp/4710'], interfaces)).toEqual(['/ip4/5.9.1.2/tcp/4710', '/ip6/2a01:4f8:1:2::3/tcp/4710'])
    // Port 0 has no known port yet: left to AutoNAT.
    expect(boundPublicAddresses(['/ip4/5.9.1.2/tcp/0'], interfaces)).toEqual([])
  })

  it('tells public, relayed and private apart, and relays only when public in auto mode', () => {
    const relayed = multiaddr('/ip4/5.9.1.2/tcp/4710/p2p/12D3KooWLaspDnnhKR71JJupZ3KqUqSKtFGbbX7j6PioiTbLiWhh/p2p-circuit')
    expect(isCircuit(relayed)).toBe(true)
    expect(isPublicAddress(relayed)).toBe(false)
    expect(isPublicAddress('/ip4/203.0.113.7/tcp/4710')).toBe(false) // documentation range: private to libp2p
    expect(reachabilityOf([multiaddr('/ip4/192.168.1.20/tcp/4710'), relayed], false)).toBe('relayed')
    expect(reachabilityOf([multiaddr('/ip4/192.168.1.20/tcp/4710')], false)).toBe('private')
    expect(reachabilityOf([multiaddr('/ip4/5.9.1.2/tcp/4710'), relayed], false)).toBe('public')
    expect(reachabilityOf([], true)).toBe('public')
    expect([servesRelay('auto', 'public'), servesRelay('auto', 'relayed'), servesRelay('on', 'private'), servesRelay('off', 'public')]).toEqual([true, false, true, false])
  })

  it('refuses a bad --relay mode or --announce address with one sentence', () => {
    expect(() => parseRelayMode('maybe')).toThrow(/--relay "maybe" is not a relay mode; use auto .*, on, or off/)
    expect(() => checkAnnounceAddress('/ip4/5.9.1.2/udp/4710')).toThrow(/is not a direct TCP address/)
    expect(() => checkAnnounceAddress('/ip4/5.9.1.2/tcp/4710/p2p/12D3KooWLaspDnnhKR71JJupZ3KqUqSKtFGbbX7j6PioiTbLiWhh/p2p-circuit')).toThrow(/is not a direct TCP address/)
    expect(() => checkAnnounceAddress('nonsense')).toThrow(/--announce nonsense is not a valid multiaddr/)
    expect(checkAnnounceAddress('/ip4/5.9.1.2/tcp/4710')).toBe('/ip4/5.9.1.2/tcp/4710')
  })
})

describe('the default gateway for NAT-PMP', () => {
  it('is read from the kernel\'s routing table (little-endian hex), and absent without a default route', async () => {
    const { defaultGateway } = await import('../../src/gossip/nat/port-mapping.js')
    const table = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0'
    ].join('\n')
    expect(defaultGateway(table)).toBe('192.168.1.1')
    expect(defaultGateway(table.split('\n').slice(0, 2).join('\n'))).toBeUndefined()
  })
})
