import { describe, expect, it } from 'vitest'
import { commands } from '../../src/node/cli/commands/index.js'
import { formatHelp, parseCommandLine, type ParsedCommandLine } from '../../src/node/cli/parse.js'
import { buildNodeConfig, parseApiAddress, type JoinFlags } from '../../src/node/config.js'
import { defaultSlots, detectPlatforms, distroLabel } from '../../src/node/platform.js'
import { peersTable } from '../../src/node/cli/commands/peers.js'

const PEER = '12D3KooWHPeBAvfnMKMD7Nmc2tAbRN7mSgnYGwBEsbSDv2PAWwBM'

function parse (...argv: string[]): ParsedCommandLine {
  const parsed = parseCommandLine(argv, commands)
  if (!('values' in parsed)) throw new Error('expected a command')
  return parsed
}

function joinFlags (...argv: string[]): JoinFlags {
  const { values } = parse('join', ...argv)
  return values as unknown as JoinFlags
}

describe('parseCommandLine: init, join, peers', () => {
  it('init takes --home and --json', () => {
    const parsed = parse('init', '--home', '/tmp/x', '--json')
    expect(parsed.command.name).toEqual(['init'])
    expect(parsed.values).toMatchObject({ home: '/tmp/x', json: true })
  })

  it('join collects repeatable flags and defaults mDNS on', () => {
    const values = joinFlags('--bootstrap', `/ip4/10.0.0.1/tcp/4710/p2p/${PEER}`, '--bootstrap', `/ip4/10.0.0.2/tcp/4710/p2p/${PEER}`,
      '--platform', 'linux-x64', '--platform', 'debian-12', '--listen', '/ip4/127.0.0.1/tcp/0', '--slots', '3', '--api', '127.0.0.1:0', '--sandbox', 'none')
    expect(values).toMatchObject({
      bootstrap: [`/ip4/10.0.0.1/tcp/4710/p2p/${PEER}`, `/ip4/10.0.0.2/tcp/4710/p2p/${PEER}`],
      platform: ['linux-x64', 'debian-12'],
      listen: ['/ip4/127.0.0.1/tcp/0'],
      slots: '3',
      api: '127.0.0.1:0',
      sandbox: 'none',
      mdns: true,
      json: false
    })
    expect(joinFlags('--no-mdns').mdns).toBe(false)
    expect(joinFlags()).toMatchObject({ bootstrap: [], listen: [], platform: [], mdns: true })
  })

  it('peers takes --api or --home, and --json', () => {
    expect(parse('peers', '--api', 'http://127.0.0.1:4711', '--json').values).toMatchObject({ api: 'http://127.0.0.1:4711', json: true })
    expect(parse('peers', '--home', '/tmp/h').values).toMatchObject({ home: '/tmp/h', json: false })
  })

  it.each([
    [['join', '--frobnicate'], /--frobnicate/],
    [['join', '--slots'], /--slots/],
    [['join', 'extra'], /unexpected argument "extra"/],
    [['peers', '--no-json'], /--no-json is not an option/],
    [['jion'], /unknown command "jion"/],
    [['join', '--slots', '-1'], /^--slots needs a value, and the next word starts with "-"; if that is the value, write --slots=VALUE \(see/]
  ])('refuses %j with a UsageError', (argv, message) => {
    expect(() => parseCommandLine(argv, commands)).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(message) }))
  })

  it('help lists the three commands and join\'s flags', () => {
    expect(formatHelp(commands)).toMatch(/init[\s\S]*join[\s\S]*peers/)
    const join = commands.find((c) => c.name[0] === 'join')!
    const help = formatHelp(commands, join)
    for (const flag of ['--bootstrap MULTIADDR', '--no-mdns', '--listen MULTIADDR', '--platform LABEL', '--slots N', '--api HOST:PORT', '--sandbox bubblewrap|none']) {
      expect(help).toContain(flag)
    }
  })
})

describe('buildNodeConfig', () => {
  it('fills documented defaults', () => {
    const config = buildNodeConfig(joinFlags(), { BUILDHAUS_HOME: '/tmp/buildhaus-home' })
    expect(config).toMatchObject({
      home: '/tmp/buildhaus-home',
      listen: ['/ip4/0.0.0.0/tcp/4710'],
      bootstrap: [],
      mdns: true,
      api: { host: '127.0.0.1', port: 4711 },
      sandbox: 'bubblewrap',
      slots: defaultSlots()
    })
    expect(config.platforms).toEqual(detectPlatforms())
    expect(config.platforms[0]).toBe(`${process.platform}-${process.arch}`)
  })

  it('--home wins over $BUILDHAUS_HOME', () => {
    expect(buildNodeConfig(joinFlags('--home', '/tmp/a'), { BUILDHAUS_HOME: '/tmp/b' }).home).toBe('/tmp/a')
  })

  it.each([
    [['--slots=-1'], /--slots "-1" is not a whole number/],
    [['--slots', '1.5'], /--slots "1.5" is not a whole number/],
    [['--slots', 'many'], /--slots "many"/],
    [['--slots', '5000'], /from 0 to 1024/],
    [['--platform', 'Linux X'], /--platform "Linux X" is not a platform label/],
    [['--platform=-x'], /is not a platform label/],
    [['--api', 'localhost'], /--api "localhost" is not HOST:PORT/],
    [['--api', '127.0.0.1:99999'], /is not HOST:PORT/],
    [['--api', 'bad host:1'], /neither an IP address nor a host name/],
    [['--sandbox', 'docker'], /--sandbox "docker" is not a sandbox/],
    [['--listen', 'tcp:4710'], /--listen tcp:4710 is not a valid multiaddr/],
    [['--listen', '/ip4/127.0.0.1/udp/4710'], /not a TCP address/],
    [['--bootstrap', '/ip4/127.0.0.1/tcp/4710'], /does not name a peer; add \/p2p\/<peer id>/],
    [['--bootstrap', '/ip4/127.0.0.1/tcp/4710/p2p/nonsense'], /is not a valid peer id/],
    [['--bootstrap', 'not-an-address'], /--bootstrap not-an-address is not a valid multiaddr/]
  ])('refuses join %j', (argv, message) => {
    expect(() => buildNodeConfig(joinFlags(...argv), {})).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(message) }))
  })

  it('accepts slots 0, several labels, IPv6 and host-name API addresses', () => {
    const config = buildNodeConfig(joinFlags('--slots', '0', '--platform', 'linux-x64', '--platform', 'ubuntu-24.04', '--api', '[::1]:0'), {})
    expect(config).toMatchObject({ slots: 0, platforms: ['linux-x64', 'ubuntu-24.04'], api: { host: '::1', port: 0 } })
    expect(parseApiAddress('localhost:4711')).toEqual({ host: 'localhost', port: 4711 })
    expect(parseApiAddress(':4712')).toEqual({ host: '127.0.0.1', port: 4712 })
  })
})

describe('platform detection', () => {
  it('names the distribution from os-release', () => {
    expect(distroLabel('ID=debian\nVERSION_ID="12"\n')).toBe('debian-12')
    expect(distroLabel('NAME="Ubuntu"\nID=ubuntu\nVERSION_ID="24.04"\n')).toBe('ubuntu-24.04')
    expect(distroLabel('ID=arch\n')).toBe('arch')
    expect(distroLabel('NAME=nothing\n')).toBeUndefined()
  })

  it('gives half the CPUs as slots, at least one', () => {
    expect(defaultSlots(1)).toBe(1)
    expect(defaultSlots(2)).toBe(1)
    expect(defaultSlots(16)).toBe(8)
  })
})

describe('peers table', () => {
  it('aligns columns and marks this node', () => {
    const now = 1_000_000
    const text = peersTable([
      { peerId: 'self-peer', author: 'a', self: true, platforms: ['linux-x64'], slots: 2, free: 2, running: [], accepts: { network: false, root: false }, version: '0.1.0', lastSeen: now, addresses: ['/ip4/127.0.0.1/tcp/4710'], reachability: 'relayed' },
      { peerId: 'other-peer-longer', author: 'b', self: false, platforms: ['linux-arm64', 'debian-12'], slots: 8, free: 3, running: ['x', 'y'], accepts: { network: false, root: false }, version: '0.1.0', lastSeen: now - 3_500, addresses: [], reach: 'hole-punched' },
      { peerId: 'gossip-only', author: 'c', self: false, platforms: ['linux-x64'], slots: 1, free: 1, running: [], accepts: { network: false, root: false }, version: '0.1.0', lastSeen: now - 1_000, addresses: [], reach: 'none' }
    ], now)
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^PEER ID\s+PLATFORMS\s+FREE\s+RUNNING\s+SEEN\s+VERSION\s+REACH\s+ADDRESS$/)
    expect(lines[1]).toMatch(/^self-peer \*\s+linux-x64\s+2\/2\s+0\s+self\s+0\.1\.0\s+relayed\s+\/ip4\/127\.0\.0\.1\/tcp\/4710$/)
    expect(lines[2]).toMatch(/^other-peer-longer\s+linux-arm64,debian-12\s+3\/8\s+2\s+3s ago\s+0\.1\.0\s+hole-punched\s+-$/)
    expect(lines[3]).toMatch(/^gossip-only\s+linux-x64\s+1\/1\s+0\s+1s ago\s+0\.1\.0\s+-\s+-$/)
    // Columns line up: each header starts where its cells start (or end, for numbers).
    expect(lines[1]!.indexOf('linux-x64')).toBe(lines[0]!.indexOf('PLATFORMS'))
    expect(lines[1]!.indexOf('relayed')).toBe(lines[0]!.indexOf('REACH'))
    expect(lines[4]).toBe('2 peers besides this node (*)')
  })
})
