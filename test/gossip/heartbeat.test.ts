import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult, type Message, type TopicValidatorFn } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  createPresence, decodeHeartbeat, encodeHeartbeat, MAX_HEARTBEAT_BYTES, MAX_RUNNING, PRESENCE_TOPIC, type Heartbeat, type PresencePubsub
} from '../../src/gossip/presence/index.js'

const good: Heartbeat = {
  v: 1,
  platforms: ['linux-x64', 'debian-12'],
  slots: 2,
  free: 1,
  running: [`${'a'.repeat(64)}/linux-x64+debian-12`],
  accepts: { network: false, root: true },
  version: '0.1.0',
  addrs: ['/ip4/192.0.2.7/tcp/4710'],
  time: 1_795_000_000_000
}

function bytes (value: unknown): Uint8Array {
  return new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))
}

describe('heartbeat codec', () => {
  it('round-trips a well-formed heartbeat', () => {
    expect(decodeHeartbeat(encodeHeartbeat(good))).toEqual(good)
  })

  it('drops unknown fields rather than refusing them (fields may be added within v1)', () => {
    expect(decodeHeartbeat(bytes({ ...good, later: 'field' }))).toEqual(good)
  })

  it.each([
    ['not JSON', 'hello'],
    ['not UTF-8', new Uint8Array([0xff, 0xfe, 0x7b])],
    ['another version', { ...good, v: 2 }],
    ['free above slots', { ...good, free: 3 }],
    ['negative slots', { ...good, slots: -1 }],
    ['fractional slots', { ...good, slots: 1.5 }],
    ['a label with capitals', { ...good, platforms: ['Linux-x64'] }],
    ['a running entry that is not <job id>/<selector>', { ...good, running: ['job/linux-x64'] }],
    ['too many running entries', { ...good, running: Array.from({ length: MAX_RUNNING + 1 }, (_, i) => `${i.toString(16).padStart(64, '0')}/linux-x64`) }],
    ['a missing field', { ...good, accepts: undefined }],
    ['an api that is not http', { ...good, api: 'file:///etc/passwd' }],
    ['an address that is not a multiaddr', { ...good, addrs: ['192.0.2.7:4710'] }],
    ['an array', [good]]
  ])('refuses %s', (_what, value) => {
    const data = value instanceof Uint8Array ? value : bytes(value)
    expect(() => decodeHeartbeat(data)).toThrow(expect.objectContaining({ name: 'InvalidHeartbeatError' }))
  })

  it('refuses oversized messages before parsing them', () => {
    const big = bytes({ ...good, padding: 'x'.repeat(MAX_HEARTBEAT_BYTES) })
    expect(() => decodeHeartbeat(big)).toThrow(/exceeds the 16384-byte limit/)
  })

  it('never throws anything but InvalidHeartbeatError on arbitrary input', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.json().map((j) => bytes(j))), (data) => {
      try {
        decodeHeartbeat(data)
      } catch (err) {
        expect((err as Error).name).toBe('InvalidHeartbeatError')
      }
    }))
  })
})

/** A pubsub that only records: enough to drive the validator and see what is published. */
function recordingPubsub (): PresencePubsub & { published: Uint8Array[], unsubscribed: string[] } {
  const published: Uint8Array[] = []
  const unsubscribed: string[] = []
  return {
    published,
    unsubscribed,
    topicValidators: new Map<string, TopicValidatorFn>(),
    subscribe () {},
    unsubscribe (topic: string) { unsubscribed.push(topic) },
    async publish (_topic: string, data: Uint8Array) { published.push(data) }
  }
}

function signed (from: PeerId, data: Uint8Array, sequenceNumber: bigint): Message {
  return { type: 'signed', from, topic: PRESENCE_TOPIC, data, sequenceNumber, signature: new Uint8Array(64), key: from.publicKey! }
}

describe('presence membership', () => {
  it('leaving (the first step of a shutdown) tells the peers once and publishes nothing after, whatever the node updates', async () => {
    let now = 3_000_000
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const pubsub = recordingPubsub()
    const presence = createPresence({ pubsub, peerId: self }, { platforms: ['linux-x64'], slots: 2, version: '0.1.0', now: () => now })
    await presence.start()
    try {
      expect(pubsub.published).toHaveLength(1)
      presence.leave()
      // Long past the gap between two announcements: an update would be published at once.
      now += 60_000
      presence.leave()
      expect(pubsub.unsubscribed).toEqual([PRESENCE_TOPIC])
      // A build ending during the shutdown must not announce the node again: peers would take it back.
      presence.update({ free: 2, running: [] })
      expect(pubsub.published).toHaveLength(1)
    } finally {
      await presence.stop()
    }
    expect(pubsub.unsubscribed).toEqual([PRESENCE_TOPIC])
    // Started again, it announces itself again.
    await presence.start()
    try {
      expect(pubsub.published).toHaveLength(2)
    } finally {
      await presence.stop()
    }
  })

  it('joins on the first heartbeat, leaves after the timeout, and ignores replays and its own key', async () => {
    let now = 1_000_000
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const pubsub = recordingPubsub()
    const presence = createPresence({ pubsub, peerId: self }, { platforms: ['linux-x64'], slots: 2, version: '0.1.0', timeoutMs: 7_000, now: () => now })
    const events: string[] = []
    presence.addEventListener('join', (e) => { events.push(`join ${e.detail.peerId}`) })
    presence.addEventListener('leave', (e) => { events.push(`leave ${e.detail.peerId}`) })
    await presence.start()
    try {
      const validate = pubsub.topicValidators.get(PRESENCE_TOPIC)!
      expect(validate(other, signed(other, encodeHeartbeat(good), 10n))).toBe(TopicValidatorResult.Accept)
      expect(presence.members().map((m) => m.peerId)).toEqual([other.toString()])
      expect(presence.members()[0]!.heartbeat.free).toBe(1)

      // An old heartbeat replayed, and one signed with our own key: dropped without penalty.
      expect(validate(other, signed(other, encodeHeartbeat(good), 9n))).toBe(TopicValidatorResult.Ignore)
      expect(validate(self, signed(self, encodeHeartbeat(good), 11n))).toBe(TopicValidatorResult.Ignore)
      // Unsigned messages are refused outright.
      expect(validate(other, { type: 'unsigned', topic: PRESENCE_TOPIC, data: encodeHeartbeat(good) })).toBe(TopicValidatorResult.Reject)

      now += 7_001;
      (presence as unknown as { sweep: () => void }).sweep()
      expect(presence.members()).toEqual([])
      // Once gone, a replay of its last heartbeat does not bring it back.
      expect(validate(other, signed(other, encodeHeartbeat(good), 10n))).toBe(TopicValidatorResult.Ignore)
      expect(validate(other, signed(other, encodeHeartbeat(good), 12n))).toBe(TopicValidatorResult.Accept)
      expect(events).toEqual([`join ${other.toString()}`, `leave ${other.toString()}`, `join ${other.toString()}`])
      expect(presence.stats).toEqual({ accepted: 2, rejected: 1, ignored: 3, turnedAway: 0, evicted: 0 })
    } finally {
      await presence.stop()
    }
  })

  it('a large mesh stretches the heartbeat interval, and a member announcing a longer one is waited for that much longer', async () => {
    let now = 2_000_000
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const pubsub = recordingPubsub()
    const presence = createPresence({ pubsub, peerId: self }, { platforms: ['linux-x64'], slots: 2, version: '0.1.0', now: () => now })
    // 2 s up to 20 nodes, then in proportion: every node keeps hearing ~2.5 heartbeats a second, up to the 30 s cap.
    expect([1, 20, 21, 50, 75, 100, 1000].map((n) => presence.intervalFor(n))).toEqual([2_000, 2_000, 8_400, 20_000, 30_000, 30_000, 30_000])
    await presence.start()
    try {
      // A small mesh announces nothing: receivers assume the default.
      expect(decodeHeartbeat(pubsub.published[0]!).every).toBeUndefined()
      const validate = pubsub.topicValidators.get(PRESENCE_TOPIC)!
      const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      expect(validate(other, signed(other, encodeHeartbeat({ ...good, every: 5_000 }), 1n))).toBe(TopicValidatorResult.Accept)
      const sweep = (): void => { (presence as unknown as { sweep: () => void }).sweep() }
      now += 10_000
      sweep()
      expect(presence.members().map((m) => m.peerId)).toEqual([other.toString()])
      now += 7_600
      sweep()
      expect(presence.members()).toEqual([])
      // Receivers refuse an interval outside the bounds.
      expect(() => decodeHeartbeat(bytes({ ...good, every: 3_600_000 }))).toThrow(/every/)
    } finally {
      await presence.stop()
    }
  })

  it('publishes at start and promptly on update(), and refuses updates that would make a bad heartbeat', async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const pubsub = recordingPubsub()
    let now = 5_000_000
    const presence = createPresence({ pubsub, peerId: self }, { platforms: ['linux-x64'], slots: 2, version: '0.1.0', now: () => now })
    await presence.start()
    try {
      expect(pubsub.published).toHaveLength(1)
      now += 1_000
      const job = `${'b'.repeat(64)}/linux-x64`
      presence.update({ free: 1, running: [job] })
      expect(pubsub.published).toHaveLength(2)
      expect(decodeHeartbeat(pubsub.published[1]!)).toMatchObject({ free: 1, running: [job], slots: 2 })
      expect(presence.local).toMatchObject({ free: 1, running: [job] })

      expect(() => { presence.update({ running: ['not a job'] }) }).toThrow(/malformed heartbeat at running/)
      expect(presence.local.running).toEqual([job])
    } finally {
      await presence.stop()
    }
  })

  it('keeps an update for the next heartbeat of the interval when asked (load the log already carries)', async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const pubsub = recordingPubsub()
    let now = 5_000_000
    const presence = createPresence({ pubsub, peerId: self }, { platforms: ['linux-x64'], slots: 2, version: '0.1.0', intervalMs: 60_000, now: () => now })
    await presence.start()
    try {
      expect(pubsub.published).toHaveLength(1)
      expect(presence.announcesWithinMs()).toBe(60_000)
      now += 1_000
      const job = `${'c'.repeat(64)}/linux-x64`
      presence.update({ free: 1, running: [job] }, { announce: 'next' })
      expect(pubsub.published).toHaveLength(1)
      expect(presence.local).toMatchObject({ free: 1, running: [job] })
      // Whatever publishes next carries it (here an update that must go out at once).
      presence.update({ api: 'http://127.0.0.1:8080' })
      expect(pubsub.published).toHaveLength(2)
      expect(decodeHeartbeat(pubsub.published[1]!)).toMatchObject({ free: 1, running: [job] })
      // A bad heartbeat is refused as before, announced or not.
      expect(() => { presence.update({ running: ['not a job'] }, { announce: 'next' }) }).toThrow(/malformed heartbeat at running/)
    } finally {
      await presence.stop()
    }
  })
})
