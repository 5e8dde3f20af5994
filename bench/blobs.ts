import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { blobExchange } from '../src/blobs/exchange/index.js'
import { BlobStore } from '../src/blobs/store.js'
import { generateNodeKey } from '../src/crypto/keys.js'
import { libp2pPrivateKey } from '../src/crypto/peer-id.js'
import { createMeshLibp2p } from '../src/gossip/libp2p.js'
import { median, round } from './stats.js'

export interface BlobBenchOptions {
  /** Blob size in MiB (default 64). */
  sizeMb?: number
  /** Timed runs of each method; the median is reported (default 3). */
  runs?: number
}

/**
 * Fetch throughput of one blob between two libp2p nodes on loopback (TCP +
 * Noise + Yamux + the blob protocol, verified and stored), beside the same
 * bytes sent over a plain TCP socket into the same kind of store (hashed,
 * written, fsync'd) in the same run. The ratio is the cost of the protocol
 * stack; both sides share this process and its two cores.
 */
export async function benchBlobs (options: BlobBenchOptions = {}): Promise<Record<string, unknown>> {
  const sizeMb = options.sizeMb ?? 64
  const runs = options.runs ?? 3
  const size = sizeMb * 1024 * 1024
  const dir = await mkdtemp(join(tmpdir(), 'buildhaus-bench-blobs-'))
  const cleanups: Array<() => Promise<unknown>> = [async () => await rm(dir, { recursive: true, force: true })]
  try {
    const source = await BlobStore.open({ dir: join(dir, 'source'), maxBytes: 4 * size })
    const { hash } = await source.put(randomChunks(size))

    const server = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const client = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
    cleanups.push(async () => await server.stop(), async () => await client.stop())
    const serving = blobExchange({ network: server, store: source })
    await serving.start()
    cleanups.push(async () => { await serving.stop() })
    await client.dial(server.getMultiaddrs()[0]!)

    const tcp = createServer((socket) => { createReadStream(source.path(hash)).pipe(socket) })
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => { await new Promise((resolve) => tcp.close(resolve)) })
    const tcpPort = (tcp.address() as AddressInfo).port

    const libp2pMs: number[] = []
    const tcpMs: number[] = []
    let peakRssMb = 0
    for (let run = 0; run < runs; run++) {
      // Alternate, so neither method always runs on a warmer machine.
      {
        const store = await BlobStore.open({ dir: join(dir, `libp2p-${run}`), maxBytes: 4 * size })
        const fetching = blobExchange({ network: client, store })
        await fetching.start()
        const rssBefore = process.memoryUsage().rss
        let peak = rssBefore
        const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 10)
        const started = performance.now()
        await fetching.fetch(hash, { from: [server.peerId], maxBytes: size })
        libp2pMs.push(performance.now() - started)
        clearInterval(sampler)
        peakRssMb = Math.max(peakRssMb, (peak - rssBefore) / 1024 / 1024)
        await fetching.stop()
        await rm(store.dir, { recursive: true, force: true })
      }
      {
        const store = await BlobStore.open({ dir: join(dir, `tcp-${run}`), maxBytes: 4 * size })
        const started = performance.now()
        const socket = await connectTcp(tcpPort)
        const stored = await store.put(socket, { expected: hash })
        tcpMs.push(performance.now() - started)
        if (stored.size !== size) throw new Error(`plain TCP copy delivered ${stored.size} of ${size} bytes`)
        await rm(store.dir, { recursive: true, force: true })
      }
    }
    const libp2pMedian = median(libp2pMs)
    const tcpMedian = median(tcpMs)
    const mbps = (ms: number): number => round(sizeMb / (ms / 1000))
    return {
      blobMb: sizeMb,
      runs,
      libp2pFetch: { mbPerS: mbps(libp2pMedian), ms: round(libp2pMedian), runsMs: libp2pMs.map(round), peakRssGrowthMb: round(peakRssMb) },
      plainTcpCopy: { mbPerS: mbps(tcpMedian), ms: round(tcpMedian), runsMs: tcpMs.map(round) },
      ratio: Math.round((tcpMedian / libp2pMedian) * 100) / 100,
      note: 'ratio = libp2p fetch throughput / plain TCP throughput; both verify sha256 and write + fsync into a BlobStore'
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  }
}

async function * randomChunks (size: number): AsyncGenerator<Uint8Array> {
  const chunk = 1024 * 1024
  for (let sent = 0; sent < size; sent += chunk) yield randomBytes(Math.min(chunk, size - sent))
}

async function connectTcp (port: number): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => { resolve(socket) })
    socket.once('error', reject)
  })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchBlobs(), null, 2))
  // libp2p sockets and worker threads may outlive the figures.
  process.exit(0)
}
