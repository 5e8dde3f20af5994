import fc from 'fast-check'
import { decodeHeader, decodeRequest, encodeHeader, encodeRequest, type BlobResponseHeader } from '../../../src/blobs/exchange/messages.js'
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../../../src/gossip/presence/heartbeat.js'
import { decodeFrame, encodeFrame, type SyncFrame } from '../../../src/ledger/sync/frames.js'
import { MAX_ENTRIES_PER_FRAME } from '../../../src/ledger/sync/constants.js'
import { Uint8ArrayList } from 'uint8arraylist'
import { hexArb, mutate, mutationsArb, onlyThrows, runs } from '../kit.js'

/** Decoders of what peers send: sync frames, blob protocol messages, presence heartbeats. */

const encoder = new TextEncoder()
/** Text that can be an entry line inside a frame: anything without a newline (the frame's separator). */
const lineArb = fc.string({ maxLength: 80 }).filter((s) => !s.includes('\n'))

const frameArb: fc.Arbitrary<SyncFrame> = fc.oneof(
  fc.record({
    t: fc.constant('heads' as const),
    heads: fc.array(fc.tuple(hexArb(64), fc.nat(), hexArb(64)), { maxLength: 5 }),
    more: fc.boolean(),
    want: fc.option(fc.array(hexArb(64), { maxLength: 3 }), { nil: undefined }),
    forked: fc.option(fc.array(hexArb(64), { maxLength: 3 }), { nil: undefined })
  }, { requiredKeys: ['t', 'heads', 'more'] }),
  fc.record({ t: fc.constant('entries' as const), lines: fc.array(lineArb, { minLength: 1, maxLength: 6 }) }),
  fc.record({ t: fc.constant('fork' as const), lines: fc.tuple(lineArb, lineArb) }),
  fc.record({ t: fc.constant('end' as const), more: fc.boolean() }),
  fc.record({ t: fc.constant('done' as const) })
)

export function fuzzSyncFrames (scale?: number): number {
  let cases = 0
  const allowed = ['SyncProtocolError']
  // Whatever a valid frame is, it survives the wire unchanged.
  fc.assert(fc.property(frameArb, (frame) => {
    cases++
    const decoded = decodeFrame(encodeFrame(frame))
    const expected = JSON.parse(JSON.stringify(frame)) as SyncFrame
    if (JSON.stringify(decoded) !== JSON.stringify(expected)) throw new Error(`round trip changed ${JSON.stringify(frame)} into ${JSON.stringify(decoded)}`)
  }), { numRuns: runs(3000, scale) })
  // Arbitrary bytes, JSON and mutated frames: a SyncProtocolError or a frame, nothing else.
  fc.assert(fc.property(fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.json({ maxDepth: 3 }).map((j) => encoder.encode(j)),
    fc.tuple(frameArb, mutationsArb).map(([frame, mutations]) => mutate(encodeFrame(frame), mutations))
  ), fc.boolean(), (bytes, asList) => {
    cases++
    onlyThrows(allowed, () => decodeFrame(asList ? new Uint8ArrayList(bytes.subarray(0, 3), bytes.subarray(3)) : bytes))
  }), { numRuns: runs(6000, scale) })
  // Header counts at and past their bounds.
  fc.assert(fc.property(fc.integer({ min: -2, max: MAX_ENTRIES_PER_FRAME + 2 }), fc.integer({ min: 0, max: 8 }), (n, lines) => {
    cases++
    onlyThrows(allowed, () => decodeFrame(encoder.encode(`{"n":${n},"t":"entries"}${'\nx'.repeat(lines)}`)))
  }), { numRuns: runs(500, scale) })
  return cases
}

const headerArb: fc.Arbitrary<BlobResponseHeader> = fc.oneof(
  fc.record({ status: fc.constant('found' as const), size: fc.maxSafeNat() }),
  fc.constant({ status: 'missing' as const }),
  fc.constant({ status: 'busy' as const })
)

export function fuzzBlobMessages (scale?: number): number {
  let cases = 0
  const allowed = ['InvalidInputError']
  fc.assert(fc.property(hexArb(64), headerArb, (hash, header) => {
    cases++
    if (decodeRequest(encodeRequest({ hash })).hash !== hash) throw new Error('request round trip failed')
    if (JSON.stringify(decodeHeader(encodeHeader(header))) !== JSON.stringify(header)) throw new Error('header round trip failed')
  }), { numRuns: runs(1000, scale) })
  fc.assert(fc.property(fc.oneof(
    fc.uint8Array({ maxLength: 2_000 }),
    fc.json({ maxDepth: 3 }).map((j) => encoder.encode(j)),
    fc.tuple(hexArb(64), mutationsArb).map(([hash, m]) => mutate(encodeRequest({ hash }), m)),
    fc.tuple(headerArb, mutationsArb).map(([header, m]) => mutate(encodeHeader(header), m))
  ), (bytes) => {
    cases++
    onlyThrows(allowed, () => decodeRequest(bytes))
    onlyThrows(allowed, () => decodeHeader(bytes))
  }), { numRuns: runs(5000, scale) })
  return cases
}

const heartbeat: Heartbeat = {
  v: 1, platforms: ['linux-x64', 'debian-12'], slots: 2, free: 1, running: [`${'a'.repeat(64)}/linux-x64`],
  accepts: { network: false, root: false }, version: '0.1.0', api: 'http://10.0.0.1:4711', addrs: ['/ip4/10.0.0.1/tcp/4710'], time: 1_767_225_600_000
}

export function fuzzHeartbeats (scale?: number): number {
  let cases = 0
  const allowed = ['InvalidHeartbeatError']
  const good = encodeHeartbeat(heartbeat)
  fc.assert(fc.property(fc.oneof(
    fc.uint8Array({ maxLength: 600 }),
    fc.json({ maxDepth: 4 }).map((j) => encoder.encode(j)),
    mutationsArb.map((m) => mutate(good, m)),
    // Every field replaced by something else of any type.
    fc.tuple(fc.constantFrom(...Object.keys(heartbeat)), fc.jsonValue({ maxDepth: 2 })).map(([key, value]) => encoder.encode(JSON.stringify({ ...heartbeat, [key]: value })))
  ), (bytes) => {
    cases++
    const decoded = onlyThrows(allowed, () => decodeHeartbeat(bytes))
    // What is accepted must be a heartbeat we would send ourselves.
    if (decoded !== undefined) onlyThrows([], () => encodeHeartbeat(decoded))
  }), { numRuns: runs(5000, scale) })
  return cases
}
