import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { defaultLogger } from '@libp2p/logger'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { sendWindowUpdatesAtHalfWindow } from '../../src/gossip/yamux-window.js'

/** Yamux frame types (the library's FrameType, not exported from its package). */
const DATA = 0
const WINDOW_UPDATE = 1
const INITIAL_WINDOW = 256 * 1024

interface Sent { type: number, flag: number, length: number }

/** An established inbound yamux stream whose frames out are recorded instead of sent. */
function recordingStream (): { stream: YamuxStream, sent: Sent[], receive: (bytes: number) => void } {
  sendWindowUpdatesAtHalfWindow()
  const sent: Sent[] = []
  const stream = new YamuxStream({
    id: '1',
    streamId: 1,
    direction: 'inbound',
    state: StreamState.Established,
    log: defaultLogger().forComponent('test:yamux'),
    getRTT: () => -1,
    sendFrame: (header: Sent) => { sent.push({ type: header.type, flag: header.flag, length: header.length }); return true }
  } as unknown as ConstructorParameters<typeof YamuxStream>[0])
  const receive = (bytes: number): void => {
    stream.handleData({ header: { type: DATA, flag: 0, streamID: 1, length: bytes }, data: new Uint8ArrayList(new Uint8Array(bytes)) } as unknown as Parameters<YamuxStream['handleData']>[0])
  }
  return { stream, sent, receive }
}

describe('yamux window updates (src/gossip/yamux-window.ts)', () => {
  // js-libp2p-yamux answered every data frame with a window update: a second frame (Noise, a
  // socket write) for each small gossip message, and as much work again for its sender.
  it('answers many small frames with no window update until half the window is used', () => {
    const { sent, receive } = recordingStream()
    for (let i = 0; i < 100; i++) receive(1_000)
    expect(sent.filter((f) => f.type === WINDOW_UPDATE)).toEqual([])
  })

  it('sends one update, for all that was used, once half the window is used, so the sender never stalls', () => {
    const { sent, receive } = recordingStream()
    const frames = Math.ceil((INITIAL_WINDOW / 2) / 1_000)
    for (let i = 0; i < frames; i++) receive(1_000)
    const updates = sent.filter((f) => f.type === WINDOW_UPDATE)
    expect(updates).toHaveLength(1)
    expect(updates[0]!.length).toBe(frames * 1_000)
    // And the window is whole again: as many frames once more before the next update.
    for (let i = 0; i < frames - 1; i++) receive(1_000)
    expect(sent.filter((f) => f.type === WINDOW_UPDATE)).toHaveLength(1)
    receive(1_000)
    expect(sent.filter((f) => f.type === WINDOW_UPDATE)).toHaveLength(2)
  })

  it('is installed once, however many nodes start', () => {
    sendWindowUpdatesAtHalfWindow()
    const first = (YamuxStream.prototype as unknown as { sendWindowUpdate: unknown }).sendWindowUpdate
    sendWindowUpdatesAtHalfWindow()
    expect((YamuxStream.prototype as unknown as { sendWindowUpdate: unknown }).sendWindowUpdate).toBe(first)
  })
})
