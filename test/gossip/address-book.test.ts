import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { AddressBook, scopeOf } from '../../src/gossip/address-book.js'
import { authorOfPeerId } from '../../src/crypto/peer-id.js'

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** What the book reads of a connection an answer came over. */
function over (remotePeer: PeerId, remoteAddr: string): Connection {
  return { remotePeer, remoteAddr: multiaddr(`${remoteAddr}/p2p/${remotePeer.toString()}`) } as unknown as Connection
}

const gate = (book: AddressBook, address: string): boolean => book.gater.denyDialMultiaddr!(multiaddr(address)) as boolean

describe('AddressBook', () => {
  it('refuses every address it has not seen, and any address that names no peer', async () => {
    const book = new AddressBook()
    const stranger = await peer()
    expect(gate(book, `/ip4/127.0.0.1/tcp/45999/p2p/${stranger.toString()}`)).toBe(true)
    expect(gate(book, '/ip4/192.0.2.7/tcp/4710')).toBe(true)
    // A stranger's heartbeat addresses are not even recorded.
    book.announced(stranger, ['/ip4/127.0.0.1/tcp/45999'])
    expect(book.dialable(stranger)).toEqual([])
    expect(book.stats).toMatchObject({ denied: 2, deniedUnseen: 2, allowed: 0 })
  })

  it('always lets bootstrap addresses through, without budget', async () => {
    const boot = await peer()
    const address = `/ip4/192.0.2.7/tcp/4710/p2p/${boot.toString()}`
    const book = new AddressBook({ bootstrap: [address], dialBurst: 1, dialsPerSecond: 0 })
    for (let i = 0; i < 10; i++) expect(gate(book, address)).toBe(false)
    expect(book.isIntroducer(boot)).toBe(true)
  })

  it('takes introductions only from introducers, within the introducer\'s scope, and dials each once', async () => {
    const boot = await peer()
    const stranger = await peer()
    const target = await peer()
    const book = new AddressBook({ bootstrap: [`/ip4/198.51.100.1/tcp/4710/p2p/${boot.toString()}`] })
    const offer = [{ id: target.toString(), addrs: ['/ip4/127.0.0.1/tcp/22', '/ip4/192.168.1.5/tcp/4710', '/ip4/203.0.113.9/tcp/4710', '/dns4/example.org/tcp/4710'] }]
    expect(book.introduced(over(stranger, '/ip4/203.0.113.50/tcp/4710'), offer)).toBe(0)
    // Reached over the internet, the introducer cannot send us into our loopback or LAN, nor to a DNS name.
    expect(book.introduced(over(boot, '/ip4/198.51.100.1/tcp/4710'), offer)).toBe(1)
    expect(book.dialable(target).map(String)).toEqual([`/ip4/203.0.113.9/tcp/4710/p2p/${target.toString()}`])
    const address = book.dialable(target)[0]!.toString()
    expect(gate(book, address)).toBe(false)
    // Tried once and never proven: not again, until an introducer vouches for it anew.
    expect(gate(book, address)).toBe(true)
    expect(book.dialable(target)).toEqual([])
    book.introduced(over(boot, '/ip4/198.51.100.1/tcp/4710'), offer)
    expect(gate(book, address)).toBe(false)
  })

  it('dials a member\'s announced addresses (once), never a stranger\'s', async () => {
    const member = await peer()
    const stranger = await peer()
    const members = new Set([authorOfPeerId(member)])
    const book = new AddressBook({ isMember: (author) => members.has(author) })
    book.announced(member, ['/ip4/203.0.113.9/tcp/4710'])
    book.announced(stranger, ['/ip4/203.0.113.10/tcp/4710'])
    expect(book.dialable(member)).toHaveLength(1)
    expect(book.dialable(stranger)).toHaveLength(0)
    expect(book.isIntroducer(member)).toBe(true)
    expect(book.isIntroducer(stranger)).toBe(false)
  })

  it('budgets dials per peer and overall', async () => {
    let now = 1_000_000
    const boot = await peer()
    const book = new AddressBook({
      bootstrap: [`/ip4/10.0.0.1/tcp/4710/p2p/${boot.toString()}`],
      dialBurst: 5,
      dialsPerSecond: 1,
      peerDialsPerWindow: 2,
      peerDialWindowMs: 5_000,
      now: () => now
    })
    const targets = await Promise.all(Array.from({ length: 8 }, async () => await peer()))
    book.introduced(over(boot, '/ip4/10.0.0.1/tcp/4710'), targets.map((t, i) => ({ id: t.toString(), addrs: [`/ip4/10.0.1.${i}/tcp/4710`, `/ip4/10.0.2.${i}/tcp/4710`, `/ip4/10.0.3.${i}/tcp/4710`] })))
    // One peer: two addresses in its window, then no more.
    const first = book.dialable(targets[0]!).map(String)
    expect(first.map((a) => gate(book, a))).toEqual([false, false, true])
    // Overall: the burst (5) is spent after three more, then one a second.
    const others = targets.slice(1).map((t) => book.dialable(t)[0]!.toString())
    expect(others.map((a) => gate(book, a))).toEqual([false, false, false, true, true, true, true])
    now += 1_000
    expect(gate(book, book.dialable(targets[4]!)[0]!.toString())).toBe(false)
    expect(gate(book, book.dialable(targets[5]!)[0]!.toString())).toBe(true)
    expect(book.stats.deniedBudget).toBeGreaterThanOrEqual(6)
  })

  it('stays bounded under fresh keys, forgetting strangers before members', async () => {
    const boot = await peer()
    const member = await peer()
    const book = new AddressBook({ bootstrap: [`/ip4/10.0.0.1/tcp/4710/p2p/${boot.toString()}`], maxPeers: 20, isMember: (author) => author === authorOfPeerId(member) })
    book.announced(member, ['/ip4/10.0.9.9/tcp/4710'])
    const via = over(boot, '/ip4/10.0.0.1/tcp/4710')
    for (let i = 0; i < 200; i++) book.introduced(via, [{ id: (await peer()).toString(), addrs: [`/ip4/10.1.${i % 250}.1/tcp/4710`] }])
    expect(book.stats.peers).toBeLessThanOrEqual(20)
    expect(book.dialable(member)).toHaveLength(1)
    expect(book.isIntroducer(boot)).toBe(true)
  })

  it('knows the scope of an address', () => {
    expect(scopeOf(multiaddr('/ip4/127.0.0.1/tcp/1'))).toBe('loopback')
    expect(scopeOf(multiaddr('/ip6/::1/tcp/1'))).toBe('loopback')
    expect(scopeOf(multiaddr('/ip4/172.20.0.1/tcp/1'))).toBe('private')
    expect(scopeOf(multiaddr('/ip6/fe80::1/tcp/1'))).toBe('private')
    expect(scopeOf(multiaddr('/ip4/100.64.0.1/tcp/1'))).toBe('private')
    expect(scopeOf(multiaddr('/ip4/0.0.0.0/tcp/1'))).toBe('unusable')
    expect(scopeOf(multiaddr('/ip4/224.0.0.251/tcp/1'))).toBe('unusable')
    expect(scopeOf(multiaddr('/dns4/example.org/tcp/1'))).toBe('unusable')
    expect(scopeOf(multiaddr('/ip4/8.8.8.8/tcp/1'))).toBe('public')
  })
})
