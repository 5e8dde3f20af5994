import { DecompressionLimitError } from '../errors.js'
import { createReadStream } from 'node:fs'
import { createGunzip } from 'node:zlib'

/** The fields of a gzip member header (RFC 1952) that builds tend to vary. */
export interface GzipHeader {
  /** MTIME: seconds since the epoch, 0 when unset. */
  mtime: number
  /** OS byte (3 = Unix, 255 = unknown). */
  os: number
  /** XFL: compression level hint. */
  xfl: number
  name?: string
  comment?: string
}

export function isGzip (head: Uint8Array): boolean {
  return head.byteLength >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 8
}

/** Parse the header at the start of `head` (the file's first bytes); undefined if it is cut short. */
export function parseGzipHeader (head: Buffer): GzipHeader | undefined {
  if (!isGzip(head) || head.byteLength < 10) return undefined
  const flags = head[3]!
  const header: GzipHeader = { mtime: head.readUInt32LE(4), xfl: head[8]!, os: head[9]! }
  let offset = 10
  if ((flags & 0x04) !== 0) {
    if (head.byteLength < offset + 2) return undefined
    offset += 2 + head.readUInt16LE(offset)
  }
  const zeroTerminated = (): string | undefined => {
    const end = head.indexOf(0, offset)
    if (end === -1) return undefined
    const text = head.subarray(offset, end).toString('latin1')
    offset = end + 1
    return text
  }
  if ((flags & 0x08) !== 0) header.name = zeroTerminated()
  if ((flags & 0x10) !== 0) header.comment = zeroTerminated()
  return header
}

/** The decompressed bytes of a gzip file, failing past `maxBytes` (a gzip bomb cannot fill the disk or the memory). */
export async function * gunzipFile (path: string, maxBytes: number): AsyncGenerator<Buffer> {
  const source = createReadStream(path)
  const gunzip = createGunzip()
  source.once('error', (err) => { gunzip.destroy(err) })
  source.pipe(gunzip)
  let total = 0
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      total += chunk.byteLength
      if (total > maxBytes) throw new DecompressionLimitError(`decompresses to more than ${maxBytes} bytes`)
      yield chunk
    }
  } finally {
    source.destroy()
    gunzip.destroy()
  }
}
