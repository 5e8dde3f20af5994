import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { describeError } from '../../util/errors.js'
import { DecompressionLimitError } from '../errors.js'
import { MAX_ARCHIVE_MEMBERS, MAX_DECOMPRESSED_BYTES, MAX_MEMBER_EXTRACT_BYTES } from './constants.js'
import type { Deadline } from './deadline.js'
import { gunzipFile, parseGzipHeader, type GzipHeader } from './gzip.js'
import { scanTar, type TarMember } from './tar.js'

// Reading what is inside the artifacts (gzip streams and headers, tar members)
// for compare.ts, which decides what differs and writes the report.

/** The first `bytes` of a gzip file, decompressed (to tell a tarball from other gzip data). */
export async function firstDecompressed (path: string, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of gunzipFile(path, MAX_DECOMPRESSED_BYTES)) {
    chunks.push(chunk)
    total += chunk.byteLength
    if (total >= bytes) break
  }
  return Buffer.concat(chunks).subarray(0, bytes)
}

/** Decompress two gzip files side by side into `dir` (as a and b), up to MAX_DECOMPRESSED_BYTES each; throws if either fails. */
export async function gunzipPair (pathA: string, pathB: string, dir: string, deadline: Deadline): Promise<{ a: string, b: string }> {
  const out = { a: join(dir, 'a'), b: join(dir, 'b') }
  await Promise.all([writeStream(gunzipFile(pathA, MAX_DECOMPRESSED_BYTES), out.a, deadline), writeStream(gunzipFile(pathB, MAX_DECOMPRESSED_BYTES), out.b, deadline)])
  return out
}

/** Write a stream to a file, up to `maxBytes` (the rest is read and dropped), stopping at the deadline. */
async function writeStream (source: AsyncIterable<Buffer>, path: string, deadline: Deadline, maxBytes = Number.POSITIVE_INFINITY): Promise<{ written: number, total: number }> {
  const handle = await open(path, 'wx', 0o600)
  let written = 0
  let total = 0
  try {
    for await (const chunk of source) {
      if (deadline.expired) break
      total += chunk.byteLength
      const room = Math.max(0, maxBytes - written)
      if (room === 0) continue
      const piece = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
      await handle.write(piece)
      written += piece.byteLength
    }
  } finally {
    await handle.close()
  }
  return { written, total }
}

export interface HeaderDifference {
  field: string
  a: string
  b: string
}

export async function gzipHeaderDifferences (pathA: string, pathB: string): Promise<HeaderDifference[]> {
  const [headA, headB] = await Promise.all([readHead(pathA, 4096), readHead(pathB, 4096)])
  const a = parseGzipHeader(headA)
  const b = parseGzipHeader(headB)
  if (a === undefined || b === undefined) return []
  const show: Record<keyof GzipHeader, (h: GzipHeader) => string> = {
    mtime: (h) => h.mtime === 0 ? '0 (unset)' : `${h.mtime} (${new Date(h.mtime * 1000).toISOString()})`,
    os: (h) => String(h.os),
    xfl: (h) => String(h.xfl),
    name: (h) => JSON.stringify(h.name ?? null),
    comment: (h) => JSON.stringify(h.comment ?? null)
  }
  const differences: HeaderDifference[] = []
  for (const field of Object.keys(show) as Array<keyof GzipHeader>) {
    const [va, vb] = [show[field](a), show[field](b)]
    if (va !== vb) differences.push({ field, a: va, b: vb })
  }
  return differences
}

async function readHead (path: string, bytes: number): Promise<Buffer> {
  const handle = await open(path, 'r')
  try {
    const buffer = Buffer.alloc(bytes)
    const { bytesRead } = await handle.read(buffer, 0, bytes, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await handle.close()
  }
}

export interface MemberInfo extends TarMember {
  key: string
  sha256: string
}

interface Listing {
  members: MemberInfo[]
  complete: boolean
  error?: string
}

function archiveSource (path: string, gzipped: boolean): AsyncIterable<Uint8Array> {
  return gzipped ? gunzipFile(path, MAX_DECOMPRESSED_BYTES) : readChunks(path)
}

async function * readChunks (path: string): AsyncGenerator<Uint8Array> {
  const handle = await open(path, 'r')
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: 256 * 1024, autoClose: false }) as AsyncIterable<Buffer>) yield chunk
  } finally {
    await handle.close()
  }
}

/** Members are keyed by name; a name repeated in one archive gets " (#2)", " (#3)"… */
function memberKeyer (): (name: string) => string {
  const seen = new Map<string, number>()
  return (name) => {
    const count = (seen.get(name) ?? 0) + 1
    seen.set(name, count)
    return count === 1 ? name : `${name} (#${count})`
  }
}

export async function listArchive (path: string, gzipped: boolean, deadline: Deadline): Promise<Listing> {
  const members: MemberInfo[] = []
  const keyOf = memberKeyer()
  try {
    const result = await scanTar(archiveSource(path, gzipped), async (member, body) => {
      const hash = createHash('sha256')
      for await (const chunk of body) hash.update(chunk)
      members.push({ ...member, key: keyOf(member.name), sha256: hash.digest('hex') })
    }, (count) => count >= MAX_ARCHIVE_MEMBERS || deadline.expired)
    return { members, complete: result.complete }
  } catch (err) {
    if (err instanceof DecompressionLimitError) return { members, complete: false }
    return { members, complete: false, error: describeError(err) }
  }
}

export async function extractMembers (path: string, gzipped: boolean, wanted: Map<string, number>, prefix: string, deadline: Deadline, warn: (message: string) => void): Promise<Map<string, { path: string, cut: boolean }>> {
  const out = new Map<string, { path: string, cut: boolean }>()
  const keyOf = memberKeyer()
  try {
    await scanTar(archiveSource(path, gzipped), async (member, body) => {
      const key = keyOf(member.name)
      const index = wanted.get(key)
      if (index === undefined) return
      const target = `${prefix}${index}`
      const { written, total } = await writeStream(body, target, deadline, MAX_MEMBER_EXTRACT_BYTES)
      out.set(key, { path: target, cut: written < total })
    }, () => out.size === wanted.size || deadline.expired)
  } catch (err) {
    warn(`Could not extract members of ${basename(path)}: ${describeError(err)}.`)
  }
  return out
}
