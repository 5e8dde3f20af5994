import { createHash, randomBytes } from 'node:crypto'
import { readdir, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { BlobUnavailableError } from '../../src/blobs/errors.js'
import { blobHashOf } from '../../src/blobs/hash.js'
import { PROTOCOL } from '../../src/blobs/exchange/index.js'
import { MAX_REQUEST_BYTES } from '../../src/blobs/exchange/constants.js'
import { BlobStore } from '../../src/blobs/store.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { connect, frame, startAdversary, startBlobNode } from './nodes.js'

const teardown = useTeardown()

/** The garbage collector, for measuring live memory rather than garbage awaiting collection. */
function exposeGc (): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

function liveBytes (): number {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

async function unavailable (promise: Promise<unknown>): Promise<BlobUnavailableError> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(BlobUnavailableError)
  return err as BlobUnavailableError
}

describe('blob exchange', () => {
  it('fetches a blob from a peer that has it, verified and stored', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const data = randomBytes(1_000_000)
    const { hash } = await server.store.put(data)

    const result = await client.exchange.fetch(hash, { from: [server.libp2p.peerId] })
    expect(result).toEqual({ hash, size: data.byteLength, from: server.libp2p.peerId.toString() })
    expect(Buffer.compare(await client.store.readBytes(hash, data.byteLength), data)).toBe(0)
    expect(server.exchange.stats()).toMatchObject({ served: 1, servedBytes: data.byteLength })
    expect(client.exchange.stats()).toMatchObject({ fetched: 1, fetchedBytes: data.byteLength, failedAttempts: 0 })

    // Already here: no network at all.
    expect(await client.exchange.fetch(hash, { from: [server.libp2p.peerId] })).toEqual({ hash, size: data.byteLength })
    expect(server.exchange.stats().served).toBe(1)
  })

  it('fetches an empty blob', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const { hash } = await server.store.put(new Uint8Array(0))
    expect(await client.exchange.fetch(hash, { from: [server.libp2p.peerId] })).toMatchObject({ hash, size: 0 })
    expect(await client.store.has(hash)).toBe(true)
  })

  it('moves on to the second of three peers when the first does not have it, and leaves the third alone', async () => {
    const [empty, holder, spare, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown), startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, empty.libp2p, holder.libp2p, spare.libp2p)
    const data = randomBytes(200_000)
    const { hash } = await holder.store.put(data)
    await spare.store.put(data)

    const result = await client.exchange.fetch(hash, { from: [empty.libp2p.peerId, holder.libp2p.peerId, spare.libp2p.peerId] })
    expect(result.from).toBe(holder.libp2p.peerId.toString())
    expect(empty.exchange.stats().answeredMissing).toBe(1)
    expect(spare.exchange.stats().served).toBe(0)
    expect(client.exchange.stats().failedAttempts).toBe(1)
  })

  it('detects a peer that sends the wrong bytes, keeps none of them, and gets the blob from an honest peer', async () => {
    const data = randomBytes(300_000)
    const hash = blobHashOf(data)
    const liar = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: data.byteLength })))
      const wrong = Buffer.from(data)
      wrong[123_456] ^= 0x01 // one flipped bit
      for (let i = 0; i < wrong.byteLength; i += 65_536) stream.send(frame(wrong.subarray(i, i + 65_536)))
      await stream.close()
    })
    const [honest, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await honest.store.put(data)
    await connect(client.libp2p, liar, honest.libp2p)

    // Alone, the liar gets us nothing, and says so.
    const err = await unavailable(client.exchange.fetch(hash, { from: [liar.peerId] }))
    expect(err.attempts).toHaveLength(1)
    expect(err.attempts[0]!.peer).toBe(liar.peerId.toString())
    expect(err.attempts[0]!.reason).toMatch(/hash to [0-9a-f]{64}, not to the requested blob/)
    expect(await client.store.has(hash)).toBe(false)
    expect(client.store.usage().count).toBe(0)
    expect(await readdir(join(client.store.dir, 'tmp'))).toEqual([])

    const result = await client.exchange.fetch(hash, { from: [liar.peerId, honest.libp2p.peerId] })
    expect(result.from).toBe(honest.libp2p.peerId.toString())
    expect(Buffer.compare(await client.store.readBytes(hash, data.byteLength), data)).toBe(0)
  })

  it('gives up on a peer that stalls mid-blob, or never answers, and moves on', async () => {
    const data = randomBytes(500_000)
    const hash = blobHashOf(data)
    const midStaller = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: data.byteLength })))
      stream.send(frame(data.subarray(0, 100_000)))
      // …and then nothing, with the stream left open.
    })
    const mute = await startAdversary(teardown, async () => { /* reads the request, never answers */ })
    const honest = await startBlobNode(teardown)
    await honest.store.put(data)
    // Short enough to keep the test quick, long enough for an honest peer on a busy machine.
    const client = await startBlobNode(teardown, { init: { chunkTimeoutMs: 1500, headerTimeoutMs: 3000 } })
    await connect(client.libp2p, midStaller, mute, honest.libp2p)

    const err = await unavailable(client.exchange.fetch(hash, { from: [midStaller.peerId, mute.peerId] }))
    expect(err.attempts.map((a) => a.reason)).toEqual(['no data within 1500 ms', 'no response header within 3000 ms'])
    expect(err.message).toContain(midStaller.peerId.toString())
    expect(err.message).toContain(mute.peerId.toString())
    expect(client.store.usage().count).toBe(0)

    const result = await client.exchange.fetch(hash, { from: [midStaller.peerId, honest.libp2p.peerId] })
    expect(result.from).toBe(honest.libp2p.peerId.toString())
    expect(Buffer.compare(await client.store.readBytes(hash, data.byteLength), data)).toBe(0)
  })

  it('aborts a peer whose whole transfer exceeds the fetch deadline even if it trickles', async () => {
    const data = randomBytes(200_000)
    const hash = blobHashOf(data)
    const trickler = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: data.byteLength })))
      for (let i = 0; i < data.byteLength && stream.status === 'open'; i += 1000) {
        stream.send(frame(data.subarray(i, i + 1000)))
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })
    const client = await startBlobNode(teardown, { init: { chunkTimeoutMs: 5_000, fetchTimeoutMs: 1_000 } })
    await connect(client.libp2p, trickler)
    const err = await unavailable(client.exchange.fetch(hash, { from: [trickler.peerId] }))
    expect(err.attempts[0]!.reason).toBe('did not deliver the blob within 1000 ms')
  })

  it('refuses a blob announced larger than maxBytes before reading it', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const { hash } = await server.store.put(randomBytes(100_000))
    const err = await unavailable(client.exchange.fetch(hash, { from: [server.libp2p.peerId], maxBytes: 99_999 }))
    expect(err.attempts[0]!.reason).toBe('announced 100000 bytes, more than the 99999 allowed; nothing was read')
    expect(await client.store.has(hash)).toBe(false)
    expect(server.exchange.stats().served).toBe(0)
  })

  it('aborts a peer that sends more bytes than it announced, or garbage', async () => {
    const data = randomBytes(10_000)
    const hash = blobHashOf(data)
    const overflow = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: 5_000 })))
      stream.send(frame(data))
      await stream.close()
    })
    const notJson = await startAdversary(teardown, async (stream) => {
      stream.send(frame('\u0000\u0001 definitely not json'))
      await stream.close()
    })
    const hugeFrame = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: 10_000_000 })))
      // A length prefix claiming 5 MB in one frame, far beyond the frame bound.
      stream.send(Uint8Array.from([0x80, 0xad, 0xe2, 0x04, 1, 2, 3]))
    })
    const shortThenEnd = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: data.byteLength })))
      stream.send(frame(data.subarray(0, 4000)))
      await stream.close()
    })
    const badStatus = await startAdversary(teardown, async (stream) => {
      stream.send(frame(JSON.stringify({ status: 'found', size: -1 })))
      await stream.close()
    })
    const client = await startBlobNode(teardown)
    await connect(client.libp2p, overflow, notJson, hugeFrame, shortThenEnd, badStatus)
    const err = await unavailable(client.exchange.fetch(hash, { from: [overflow.peerId, notJson.peerId, hugeFrame.peerId, shortThenEnd.peerId, badStatus.peerId] }))
    expect(err.attempts.map((a) => a.peer)).toEqual([overflow, notJson, hugeFrame, shortThenEnd, badStatus].map((p) => p.peerId.toString()))
    const reasons = err.attempts.map((a) => a.reason)
    expect(reasons[0]).toBe('sent more than the 5000 bytes it announced')
    expect(reasons[1]).toBe('the response header is not UTF-8 JSON')
    expect(reasons[2]).toMatch(/too long/i)
    expect(reasons[3]).toBe('ended the stream after 4000 of the 10000 bytes it announced')
    expect(reasons[4]).toBe('the response header announced an invalid size -1')
    expect(client.store.usage().count).toBe(0)
  })

  it('names every peer and what it said when all fail, including one it cannot reach', async () => {
    const [empty, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, empty.libp2p)
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const hash = blobHashOf(Buffer.from('nobody has this'))
    const err = await unavailable(client.exchange.fetch(hash, { from: [stranger, empty.libp2p.peerId] }))
    expect(err.name).toBe('BlobUnavailableError')
    expect(err.attempts[0]).toMatchObject({ peer: stranger.toString(), reason: expect.stringMatching(/^could not open a blob stream/) })
    expect(err.attempts[1]).toEqual({ peer: empty.libp2p.peerId.toString(), reason: 'does not have it' })
    expect(err.message).toContain(`${empty.libp2p.peerId.toString()}: does not have it`)

    await expect(client.exchange.fetch(hash, { from: [] })).rejects.toThrow(/no peer was given to ask/)
    await expect(client.exchange.fetch('../../etc/passwd', { from: [empty.libp2p.peerId] })).rejects.toMatchObject({ name: 'InvalidInputError' })
  })

  it('dedupes concurrent fetches of the same blob into one transfer', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const data = randomBytes(2_000_000)
    const { hash } = await server.store.put(data)
    const results = await Promise.all([
      client.exchange.fetch(hash, { from: [server.libp2p.peerId] }),
      client.exchange.fetch(hash, { from: [server.libp2p.peerId] }),
      client.exchange.fetch(hash, { from: [server.libp2p.peerId] })
    ])
    expect(results.map((r) => r.size)).toEqual([data.byteLength, data.byteLength, data.byteLength])
    expect(server.exchange.stats().served).toBe(1)
    expect(client.exchange.stats().fetched).toBe(1)
  })

  it('lets a caller give up without cancelling the fetch for the others', async () => {
    const data = randomBytes(100_000)
    const hash = blobHashOf(data)
    let release!: () => void
    const released = new Promise<void>((resolve) => { release = resolve })
    const slow = await startAdversary(teardown, async (stream) => {
      await released
      stream.send(frame(JSON.stringify({ status: 'found', size: data.byteLength })))
      stream.send(frame(data))
      await stream.close()
    })
    const client = await startBlobNode(teardown)
    await connect(client.libp2p, slow)
    const impatient = new AbortController()
    const first = client.exchange.fetch(hash, { from: [slow.peerId], signal: impatient.signal })
    const second = client.exchange.fetch(hash, { from: [slow.peerId] })
    impatient.abort(new Error('user pressed ctrl-c'))
    await expect(first).rejects.toThrow('user pressed ctrl-c')
    release()
    await expect(second).resolves.toMatchObject({ hash, size: data.byteLength })
  })

  it('does not serve a blob damaged on disk: it answers "missing"', async () => {
    const dir = join(await tempDir(teardown), 'blobs')
    const data = randomBytes(50_000)
    const before = await BlobStore.open({ dir, maxBytes: 1_000_000 })
    const { hash } = await before.put(data)
    await truncate(before.path(hash), 10_000)
    const [server, client] = await Promise.all([startBlobNode(teardown, { dir }), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const err = await unavailable(client.exchange.fetch(hash, { from: [server.libp2p.peerId] }))
    expect(err.attempts[0]!.reason).toBe('does not have it')
    expect(await server.store.has(hash)).toBe(false)
  })

  it('answers "busy" beyond its concurrent uploads', async () => {
    const server = await startBlobNode(teardown, { init: { maxConcurrentServes: 0 } })
    const client = await startBlobNode(teardown)
    await connect(client.libp2p, server.libp2p)
    const { hash } = await server.store.put(randomBytes(1000))
    const err = await unavailable(client.exchange.fetch(hash, { from: [server.libp2p.peerId] }))
    expect(err.attempts[0]!.reason).toBe('is busy serving others')
    expect(server.exchange.stats().answeredBusy).toBe(1)
  })

  it('aborts the stream of a client that sends a bad request, and stays up for others', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const { hash } = await server.store.put(randomBytes(1000))
    const stream = await client.libp2p.dialProtocol(server.libp2p.peerId, PROTOCOL)
    stream.send(frame(JSON.stringify({ hash: '../../../etc/passwd' })))
    const ended = new Promise<Error | undefined>((resolve) => { stream.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
    expect(await ended).toBeDefined() // reset by the server, no answer
    expect(await client.exchange.fetch(hash, { from: [server.libp2p.peerId] })).toMatchObject({ hash, size: 1000 })
  })

  it('bounds a request in bytes and in time: a frame announced past 1 KiB, or silence past the request deadline, ends the stream unanswered', async () => {
    const server = await startBlobNode(teardown, { init: { requestTimeoutMs: 300 } })
    const client = await startBlobNode(teardown)
    await connect(client.libp2p, server.libp2p)
    const closed = async (stream: Stream): Promise<{ error: Error | undefined, received: number }> => {
      let received = 0
      stream.addEventListener('message', (evt) => { received += evt.data.byteLength })
      return await new Promise((resolve) => { stream.addEventListener('close', (evt) => { resolve({ error: evt.error, received }) }, { once: true }) })
    }
    // A length prefix of 2 KiB: refused before the body is read.
    const long = await client.libp2p.dialProtocol(server.libp2p.peerId, PROTOCOL)
    const longEnd = closed(long)
    long.send(frame('x'.repeat(MAX_REQUEST_BYTES * 2)))
    expect(await longEnd).toMatchObject({ error: expect.any(Error), received: 0 })
    // Half a request, then nothing: cut off at the deadline.
    const mute = await client.libp2p.dialProtocol(server.libp2p.peerId, PROTOCOL)
    const muteEnd = closed(mute)
    mute.send(frame(JSON.stringify({ hash: 'a'.repeat(64) })).subarray(0, 10))
    expect(await muteEnd).toMatchObject({ error: expect.any(Error), received: 0 })
  })

  it('stops serving once stopped', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const { hash } = await server.store.put(randomBytes(1000))
    await server.exchange.stop()
    const err = await unavailable(client.exchange.fetch(hash, { from: [server.libp2p.peerId] }))
    expect(err.attempts[0]!.reason).toMatch(/^could not open a blob stream/)
    await client.exchange.stop()
    await expect(client.exchange.fetch(hash, { from: [server.libp2p.peerId] })).rejects.toMatchObject({ name: 'EnvironmentError' })
  })

  it('fans out to several peers at once when asked, taking the first good copy', async () => {
    const data = randomBytes(300_000)
    const hash = blobHashOf(data)
    let asked = 0
    const mute = await startAdversary(teardown, async () => { asked++ })
    const honest = await startBlobNode(teardown)
    await honest.store.put(data)
    // A mute peer first in line, with a header deadline longer than the test's own limit:
    // asked one after the other, this fetch could not finish in time.
    const client = await startBlobNode(teardown, { init: { fanOut: 2, headerTimeoutMs: 120_000 } })
    await connect(client.libp2p, mute, honest.libp2p)
    const result = await client.exchange.fetch(hash, { from: [mute.peerId, honest.libp2p.peerId] })
    expect(result.from).toBe(honest.libp2p.peerId.toString())
    expect(asked).toBe(1) // both were asked at once…
    expect(client.exchange.stats().failedAttempts).toBe(0) // …and the mute one was called off, not failed
  })

  it('pins a fetched blob when asked', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown, { maxBytes: 150_000 })])
    await connect(client.libp2p, server.libp2p)
    const source = await server.store.put(randomBytes(100_000))
    const other = await server.store.put(randomBytes(100_000))
    await client.exchange.fetch(source.hash, { from: [server.libp2p.peerId], pin: true })
    await client.exchange.fetch(other.hash, { from: [server.libp2p.peerId] }) // over the bound: only `other` could go
    expect(await client.store.stat(source.hash)).toEqual({ size: 100_000, pinned: true })
    // A blob bigger than the whole store is refused before reading, unless pinned.
    const big = await server.store.put(randomBytes(200_000))
    const err = await unavailable(client.exchange.fetch(big.hash, { from: [server.libp2p.peerId] }))
    expect(err.attempts[0]!.reason).toBe('announced 200000 bytes, more than the whole blob store holds (150000); nothing was read')
    await expect(client.exchange.fetch(big.hash, { from: [server.libp2p.peerId], pin: true })).resolves.toMatchObject({ size: 200_000 })
  })

  it('streams a 50 MB blob end to end without holding it in memory', async () => {
    const [server, client] = await Promise.all([startBlobNode(teardown), startBlobNode(teardown)])
    await connect(client.libp2p, server.libp2p)
    const size = 50 * 1024 * 1024
    const expected = createHash('sha256')
    async function * generate (): AsyncGenerator<Uint8Array> {
      const block = randomBytes(1024 * 1024)
      for (let i = 0; i < size / block.byteLength; i++) {
        block[0] = i // every megabyte differs
        expected.update(block)
        yield block
      }
    }
    const { hash } = await server.store.put(generate())
    expect(hash).toBe(expected.digest('hex'))

    // Two views of "streams": bytes reach the disk while the transfer is under
    // way (a partial temp file is seen), and live memory stays bounded.
    const gc = exposeGc()
    const tmp = join(client.store.dir, 'tmp')
    let partialSeen = 0
    gc()
    const baseline = liveBytes()
    let peak = baseline
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        for (const name of await readdir(tmp)) {
          const bytes = (await stat(join(tmp, name)).catch(() => undefined))?.size ?? 0
          if (bytes > 0 && bytes < size) partialSeen = Math.max(partialSeen, bytes)
        }
        gc()
        peak = Math.max(peak, liveBytes())
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    try {
      expect(await client.exchange.fetch(hash, { from: [server.libp2p.peerId], maxBytes: size })).toMatchObject({ hash, size })
    } finally {
      sampling = false
      await sampler
    }
    const growthMb = (peak - baseline) / 1024 / 1024
    console.log(`50 MB fetch, both nodes in this process: peak live memory growth ${growthMb.toFixed(1)} MB; largest partial temp file seen ${(partialSeen / 1024 / 1024).toFixed(1)} MB`)
    expect(partialSeen).toBeGreaterThan(0)
    // Loose on purpose. What a transfer holds is bounded by yamux's per-stream
    // window (up to 16 MiB, held at a few stages on each side) whatever the
    // blob's size: ~55 MB here for 50 MB and ~75 MB for a 300 MB blob (measured).
    // Both sides holding the blob would need that plus 100 MB.
    expect(growthMb).toBeLessThan(100)
    expect(await client.store.verify(hash)).toBe(true)
  })
})
