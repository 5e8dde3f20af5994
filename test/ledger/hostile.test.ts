import { randomBytes } from 'node:crypto'
import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createMeshLibp2p } from '../../src/gossip/libp2p.js'
import { SYNC_PROTOCOL } from '../../src/ledger/sync/index.js'
import { encodeFrame, type SyncFrame } from '../../src/ledger/sync/frames.js'
import { waitFor } from '../../src/util/wait.js'
import { useTeardown } from '../helpers/temp-home.js'
import { makeChain, newSigner } from './helpers.js'
import { connect, converged, startNode } from './mesh.js'

const victimSettings = {
  sync: { intervalMs: 1_000, frameTimeoutMs: 1_000, sessionTimeoutMs: 8_000, maxEntriesPerSession: 600 },
  pendingLimit: 100
}

async function sendFrame (stream: Stream, frame: SyncFrame): Promise<void> {
  if (!stream.send(lp.encode.single(encodeFrame(frame)))) await stream.onDrain()
}

async function closedByVictim (stream: Stream, what: string): Promise<void> {
  await waitFor(() => stream.status !== 'open', { timeoutMs: 15_000, what: `the victim to abort the stream (${what})` })
}

describe('hostile sync peers', () => {
  const teardown = useTeardown()

  it('oversize frames, garbage, out-of-order and endless entries, and silence cost bounded time and memory; honest sync goes on', async () => {
    const victim = await startNode(teardown, victimSettings)
    const honest = await startNode(teardown, victimSettings)
    const rogue = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
    teardown(async () => { await rogue.stop() })
    // As a listener, the rogue accepts the victim's sessions and never says a word.
    await rogue.handle(SYNC_PROTOCOL, () => {})
    await connect(victim, honest)
    await rogue.dial(victim.libp2p.getMultiaddrs()[0]!)
    const open = async (): Promise<Stream> => await rogue.dialProtocol(victim.libp2p.peerId, SYNC_PROTOCOL)

    // Honest traffic throughout, more than one session's quota.
    const writing = (async () => { for (let i = 0; i < 1500; i++) await honest.store.append('note', { text: `honest ${i}` }) })()
    writing.catch(() => {})

    // 1. A frame announcing 100 MB: refused from its length prefix alone.
    const oversize = await open()
    oversize.send(Buffer.concat([Buffer.from([0x80, 0x80, 0x80, 0x30]), randomBytes(64 * 1024)]))
    await closedByVictim(oversize, 'oversize frame')

    // 2. Garbage in well-formed length prefixes.
    const garbage = await open()
    garbage.send(lp.encode.single(randomBytes(5000)))
    await closedByVictim(garbage, 'garbage')

    // 3. Entries far ahead of anything held: parked in the bounded pending buffer, never stored.
    const ahead = makeChain(newSigner(), 300, { from: 1000, prev: 'a'.repeat(64) })
    const outOfOrder = await open()
    await sendFrame(outOfOrder, { t: 'heads', heads: [], more: false })
    for (let i = 0; i < ahead.length; i += 100) await sendFrame(outOfOrder, { t: 'entries', lines: ahead.slice(i, i + 100).map((e) => e.line) })
    await sendFrame(outOfOrder, { t: 'end', more: false })
    await sendFrame(outOfOrder, { t: 'done' })
    await waitFor(() => victim.sync.stats().sessions + victim.sync.stats().failed > 0, { timeoutMs: 15_000, what: 'the out-of-order session to end' })
    expect(victim.store.stats().pending).toBeLessThanOrEqual(100)
    for (const e of ahead) expect(await victim.store.has(e.id)).toBe(false)

    // 4. An endless stream of entries: cut off at the per-session quota.
    const [one] = makeChain(newSigner(), 1)
    const endless = await open()
    await sendFrame(endless, { t: 'heads', heads: [], more: false })
    const frame = { t: 'entries', lines: Array.from({ length: 100 }, () => one!.line) } as const
    const started = Date.now()
    try {
      while (endless.status === 'open' && Date.now() - started < 20_000) {
        await sendFrame(endless, frame)
        await new Promise((resolve) => setImmediate(resolve))
      }
    } catch { /* the victim reset the stream */ }
    await closedByVictim(endless, 'endless entries')
    expect(Date.now() - started).toBeLessThan(20_000)

    // 5. A peer that opens a session and never speaks.
    const silent = await open()
    await closedByVictim(silent, 'silent peer')

    // Meanwhile the victim stayed bounded and kept syncing with the honest peer.
    await writing
    await converged([victim, honest], 1501, 60_000)
    expect(victim.store.stats().pending).toBeLessThanOrEqual(100)
    const stats = victim.sync.stats()
    expect(stats.failed).toBeGreaterThanOrEqual(4)
    // Its own sessions to the mute rogue ended by deadline, not by hanging.
    await waitFor(() => /no sync frame/.test(victim.sync.stats().lastError ?? '') || victim.sync.stats().failed > stats.failed, { timeoutMs: 15_000, what: 'a failed session with the mute rogue' })
  })
})
