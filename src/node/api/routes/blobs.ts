import { Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { MAX_SOURCE_BYTES } from '../../../archive/index.js'
import { BlobTooLargeError } from '../../../blobs/errors.js'
import { sendError } from '../errors.js'

/** Largest upload: a job's source archive. */
const MAX_UPLOAD_BYTES = MAX_SOURCE_BYTES

/** What the blob routes need: the local store, and a way to fetch from peers what it lacks. */
export interface BlobsContext {
  blobs: {
    put (data: AsyncIterable<Uint8Array>, options: { maxBytes: number }): Promise<{ hash: string, size: number }>
    openRead (hash: string): Promise<{ size: number, stream: Readable }>
    has (hash: string): Promise<boolean>
  }
  /** Fetch a blob this node lacks from the mesh (the builders that made it, then anyone). */
  fetchBlob (hash: string, signal: AbortSignal): Promise<void>
}

const HASH = /^[0-9a-f]{64}$/
/** How long a read waits for a blob to arrive from a peer. */
const REMOTE_FETCH_TIMEOUT_MS = 20_000

export function registerBlobRoutes (app: FastifyInstance, context: BlobsContext): void {
  app.register(async (scope) => {
    // Uploads are raw bytes, streamed into the store (never buffered whole).
    scope.addContentTypeParser('application/octet-stream', { bodyLimit: MAX_UPLOAD_BYTES }, (_request, payload, done) => { done(null, payload) })
    scope.post('/api/blobs', { bodyLimit: MAX_UPLOAD_BYTES }, async (request, reply) => {
      if (request.headers['content-type'] !== 'application/octet-stream') {
        return sendError(reply, 415, 'UnsupportedMediaType', 'upload the blob as raw bytes with Content-Type: application/octet-stream')
      }
      // Refuse an announced oversize upload at once instead of reading up to the bound first.
      if (Number(request.headers['content-length']) > MAX_UPLOAD_BYTES) {
        return sendError(reply, 413, 'PayloadTooLarge', `the upload is ${String(request.headers['content-length'])} bytes, over this node's limit of ${MAX_UPLOAD_BYTES} bytes; leave build outputs and large data out of the source`)
      }
      try {
        const stored = await context.blobs.put(request.body as AsyncIterable<Uint8Array>, { maxBytes: MAX_UPLOAD_BYTES })
        return await reply.status(201).send(stored)
      } catch (err) {
        if (err instanceof BlobTooLargeError) return sendError(reply, 413, err.name, err.message)
        throw err
      }
    })
  })

  app.get<{ Params: { hash: string }, Querystring: { tail?: string, download?: string } }>('/api/blobs/:hash', async (request, reply) => {
    const { hash } = request.params
    if (!HASH.test(hash)) return sendError(reply, 400, 'BadRequest', `"${hash}" is not a blob hash (64 lower-case hex digits)`)
    if (!(await context.blobs.has(hash))) {
      try {
        await context.fetchBlob(hash, AbortSignal.timeout(REMOTE_FETCH_TIMEOUT_MS))
      } catch (err) {
        return sendError(reply, 404, 'BlobNotFound', `no blob ${hash} here, and no peer could provide it (${(err as Error).message})`)
      }
    }
    const { size, stream } = await context.blobs.openRead(hash)
    reply.header('Cache-Control', 'public, max-age=31536000, immutable')
    reply.header('ETag', `"${hash}"`)
    if (typeof request.query.download === 'string' && request.query.download !== '') {
      const name = request.query.download.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128)
      reply.header('Content-Disposition', `attachment; filename="${name}"`)
    }
    const tail = request.query.tail === undefined ? undefined : Number.parseInt(request.query.tail, 10)
    if (tail !== undefined && Number.isSafeInteger(tail) && tail >= 0 && tail < size) {
      // The last `tail` bytes: the end of a build log is where it failed.
      stream.destroy()
      const ranged = await context.blobs.openRead(hash)
      const skip = size - tail
      reply.header('X-Blob-Size', String(size))
      reply.header('X-Blob-Offset', String(skip))
      // Fastify sends streams, not async generators: wrap it.
      return await reply.type('application/octet-stream').header('Content-Length', String(tail)).send(Readable.from(skipBytes(ranged.stream, skip)))
    }
    reply.header('Content-Length', String(size))
    return await reply.type('application/octet-stream').send(stream)
  })
}

async function * skipBytes (stream: Readable, skip: number): AsyncGenerator<Buffer> {
  let left = skip
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (left >= chunk.length) { left -= chunk.length; continue }
    yield left > 0 ? chunk.subarray(left) : chunk
    left = 0
  }
}
