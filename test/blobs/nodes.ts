import { join } from 'node:path'
import * as lp from 'it-length-prefixed'
import type { Stream } from '@libp2p/interface'
import { BlobStore } from '../../src/blobs/store.js'
import { blobExchange, PROTOCOL, type BlobExchange, type BlobExchangeInit } from '../../src/blobs/exchange/index.js'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
import { tempDir } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

export interface BlobNode {
  libp2p: MeshLibp2p
  store: BlobStore
  exchange: BlobExchange
}

/** A real libp2p node on loopback with a blob store and a started exchange. */
export async function startBlobNode (teardown: Teardown, options: { maxBytes?: number, init?: BlobExchangeInit, dir?: string } = {}): Promise<BlobNode> {
  const libp2p = await startLibp2p(teardown)
  const store = await BlobStore.open({ dir: options.dir ?? join(await tempDir(teardown), 'blobs'), maxBytes: options.maxBytes ?? 256 * 1024 * 1024 })
  const exchange = blobExchange({ network: libp2p, store }, options.init)
  await exchange.start()
  teardown(async () => { await exchange.stop() })
  return { libp2p, store, exchange }
}

export async function startLibp2p (teardown: Teardown): Promise<MeshLibp2p> {
  const libp2p = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
  teardown(async () => { await libp2p.stop() })
  return libp2p
}

/** Connect `from` to each of `to`, so dialling them by peer id works. */
export async function connect (from: MeshLibp2p, ...to: MeshLibp2p[]): Promise<void> {
  for (const peer of to) await from.dial(peer.getMultiaddrs()[0]!)
}

/**
 * A peer that speaks the blob protocol dishonestly: after the request, it runs
 * `behave` on the stream. Used to play liars, stallers and garbage senders.
 */
export async function startAdversary (teardown: Teardown, behave: (stream: Stream, hash: string) => Promise<void>): Promise<MeshLibp2p> {
  const libp2p = await startLibp2p(teardown)
  await libp2p.handle(PROTOCOL, (stream) => {
    void (async () => {
      try {
        const request = await firstFrame(stream)
        const { hash } = JSON.parse(new TextDecoder().decode(request)) as { hash: string }
        await behave(stream, hash)
      } catch {
        stream.abort(new Error('adversary gave up'))
      }
    })()
  })
  return libp2p
}

export function frame (bytes: Uint8Array | string): Uint8Array {
  return lp.encode.single(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes).subarray()
}

async function firstFrame (stream: Stream): Promise<Uint8Array> {
  for await (const message of lp.decode(stream)) return message.subarray()
  throw new Error('no request')
}
