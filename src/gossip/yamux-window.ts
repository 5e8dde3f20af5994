import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/**
 * Window updates once half the receive window is used, not after every frame.
 *
 * js-libp2p-yamux 8 sends a WindowUpdate frame after every data frame it
 * receives (`handleData` calls `sendWindowUpdate`, which sends whenever any
 * of the window was used). Gossip is many small frames: every gossipsub RPC
 * a node receives cost it a second frame back (its own Noise encryption and
 * socket write) and cost the sender that frame's read, decryption and
 * parsing. At 50 nodes that was as many frames as all gossip together
 * (docs/SCALING.md, "Mesh cost at 50 nodes"). go-yamux and rust-yamux send
 * the update only when at least half of the window has been used, so the
 * sender never waits for credit while it has half a window left; this does
 * the same.
 *
 * Only an established stream's plain updates wait: the first frame of a
 * stream (SYN, ACK flags), a paused stream and everything else go to the
 * library's own code unchanged, which also keeps its window auto-tuning
 * (doubling within four round trips) at each update it does send.
 */
interface WindowFields {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

const PATCHED = Symbol.for('buildhaus.yamuxHalfWindowUpdates')

export function sendWindowUpdatesAtHalfWindow (): void {
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate: (this: WindowFields) => void, [PATCHED]?: true }
  if (proto[PATCHED] === true) return
  const original = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowFields): void {
    if (this.state === StreamState.Established && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    original.call(this)
  }
  proto[PATCHED] = true
}
