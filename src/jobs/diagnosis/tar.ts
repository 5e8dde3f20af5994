import { InvalidInputError } from '../../util/errors.js'

/** What a tar header says about one member (after pax and GNU long-name records are applied). */
export interface TarMember {
  name: string
  type: string
  size: number
  mode: number
  uid: number
  gid: number
  uname: string
  gname: string
  mtime: number
  linkname: string
  /** pax records other than the ones above (e.g. atime, ctime), as "key=value" sorted — a common source of differences. */
  pax: string
}

const BLOCK = 512
const MAX_META_RECORD_BYTES = 1024 * 1024

const TYPES: Record<string, string> = {
  0: 'file',
  '\0': 'file',
  7: 'file',
  1: 'hardlink',
  2: 'symlink',
  3: 'char device',
  4: 'block device',
  5: 'directory',
  6: 'fifo'
}

/** Whether a 512-byte block is a tar header: its checksum must match. */
export function isTarHeader (block: Uint8Array): boolean {
  if (block.byteLength < BLOCK) return false
  const stored = parseOctal(block, 148, 8)
  return stored !== undefined && checksums(block).includes(stored)
}

export interface ScanResult {
  members: number
  /** False when `shouldStop` ended the scan early. */
  complete: boolean
}

/**
 * Walk a tar stream, calling `visit` with each member and its bytes (which
 * `visit` may read in part or not at all). Only reads: nothing is written
 * anywhere, so names need no sanitising here.
 */
export async function scanTar (source: AsyncIterable<Uint8Array>, visit: (member: TarMember, body: AsyncIterable<Buffer>) => Promise<void>, shouldStop: (membersSoFar: number) => boolean): Promise<ScanResult> {
  const reader = new ByteReader(source)
  let pax: Record<string, string> = {}
  let globalPax: Record<string, string> = {}
  let longName: string | undefined
  let longLink: string | undefined
  let members = 0
  while (true) {
    if (shouldStop(members)) return { members, complete: false }
    const header = await reader.read(BLOCK)
    if (header === undefined) break
    if (header.every((byte) => byte === 0)) break // end-of-archive marker
    if (!isTarHeader(header)) throw new InvalidInputError(`not a valid tar archive: bad header checksum after ${members} members`)
    const flag = String.fromCharCode(header[156]!)
    let size = parseNumber(header, 124, 12)
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META_RECORD_BYTES) throw new InvalidInputError(`tar metadata record of ${size} bytes is too large`)
      const data = await reader.readExactly(size)
      await reader.skip(padding(size))
      if (flag === 'x') pax = parsePax(data)
      else if (flag === 'g') globalPax = { ...globalPax, ...parsePax(data) }
      else if (flag === 'L') longName = cString(data)
      else longLink = cString(data)
      continue
    }
    const records = { ...globalPax, ...pax }
    if (records.size !== undefined) size = Number(records.size)
    const prefix = cString(header.subarray(345, 500))
    const shortName = cString(header.subarray(0, 100))
    const member: TarMember = {
      name: records.path ?? longName ?? (prefix !== '' && isUstar(header) ? `${prefix}/${shortName}` : shortName),
      type: TYPES[flag] ?? `type ${JSON.stringify(flag)}`,
      size,
      mode: parseNumber(header, 100, 8),
      uid: records.uid !== undefined ? Number(records.uid) : parseNumber(header, 108, 8),
      gid: records.gid !== undefined ? Number(records.gid) : parseNumber(header, 116, 8),
      uname: records.uname ?? cString(header.subarray(265, 297)),
      gname: records.gname ?? cString(header.subarray(297, 329)),
      mtime: records.mtime !== undefined ? Number(records.mtime) : parseNumber(header, 136, 12),
      linkname: records.linkpath ?? longLink ?? cString(header.subarray(157, 257)),
      pax: Object.entries(records)
        .filter(([key]) => !['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime'].includes(key))
        .map(([key, value]) => `${key}=${value}`)
        .sort()
        .join(' ')
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInputError(`tar member ${JSON.stringify(member.name)} has an invalid size`)
    pax = {}
    longName = undefined
    longLink = undefined
    const body = reader.take(size)
    await visit(member, body)
    // Whatever `visit` left unread is skipped, then the padding to the next block.
    for await (const _ of body) { /* drain */ }
    await reader.skip(padding(size))
    members++
  }
  return { members, complete: true }
}

function padding (size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

function isUstar (header: Uint8Array): boolean {
  return Buffer.from(header.subarray(257, 262)).toString('latin1') === 'ustar'
}

function cString (bytes: Uint8Array): string {
  const end = bytes.indexOf(0)
  return Buffer.from(end === -1 ? bytes : bytes.subarray(0, end)).toString('utf8')
}

function parseOctal (block: Uint8Array, offset: number, length: number): number | undefined {
  const text = Buffer.from(block.subarray(offset, offset + length)).toString('latin1').replace(/[\0 ]+$/, '').trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) return undefined
  return parseInt(text, 8)
}

/** Octal ASCII, or GNU base-256 when the first byte's high bit is set. */
function parseNumber (block: Uint8Array, offset: number, length: number): number {
  if ((block[offset]! & 0x80) !== 0) {
    let value = block[offset]! & 0x7f
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i]!
    return value
  }
  return parseOctal(block, offset, length) ?? Number.NaN
}

/** Unsigned and signed header sums (old tars used signed), with the checksum field counted as spaces. */
function checksums (block: Uint8Array): number[] {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  return [unsigned, signed]
}

/** pax extended header records: "<length> <key>=<value>\n" each. */
function parsePax (data: Buffer): Record<string, string> {
  const records: Record<string, string> = {}
  let offset = 0
  while (offset < data.byteLength) {
    const space = data.indexOf(0x20, offset)
    if (space === -1) break
    const length = Number(data.subarray(offset, space).toString('latin1'))
    if (!Number.isSafeInteger(length) || length <= 0 || offset + length > data.byteLength) throw new InvalidInputError('malformed pax record in tar archive')
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8')
    const equals = record.indexOf('=')
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1)
    offset += length
  }
  return records
}

/** Sequential reads of exact byte counts from a stream of chunks. */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0)
  private readonly iterator: AsyncIterator<Uint8Array>
  private ended = false

  constructor (source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  /** Exactly `n` bytes, or undefined at a clean end of stream; a partial read is an error. */
  async read (n: number): Promise<Buffer | undefined> {
    while (this.buffer.byteLength < n && !this.ended) await this.pull()
    if (this.buffer.byteLength === 0 && this.ended) return undefined
    if (this.buffer.byteLength < n) throw new InvalidInputError('tar archive ends in the middle of a record')
    const out = this.buffer.subarray(0, n)
    this.buffer = this.buffer.subarray(n)
    return out
  }

  async readExactly (n: number): Promise<Buffer> {
    const chunks: Buffer[] = []
    for await (const chunk of this.take(n)) chunks.push(chunk)
    return Buffer.concat(chunks)
  }

  async skip (n: number): Promise<void> {
    for await (const _ of this.take(n)) { /* discard */ }
  }

  /** The next `n` bytes as chunks; stops early only if the consumer stops. */
  take (n: number): AsyncIterable<Buffer> {
    let left = n
    const next = async (): Promise<IteratorResult<Buffer>> => {
      if (left === 0) return { done: true, value: undefined }
      if (this.buffer.byteLength === 0) {
        await this.pull()
        if (this.buffer.byteLength === 0) throw new InvalidInputError('tar archive ends in the middle of a member')
      }
      const piece = this.buffer.subarray(0, Math.min(left, this.buffer.byteLength))
      this.buffer = this.buffer.subarray(piece.byteLength)
      left -= piece.byteLength
      return { done: false, value: piece }
    }
    // Re-iterable: a second loop continues where the first stopped (used to drain).
    return { [Symbol.asyncIterator]: () => ({ next }) }
  }

  private async pull (): Promise<void> {
    if (this.ended) return
    const result = await this.iterator.next()
    if (result.done === true) {
      this.ended = true
      return
    }
    const chunk = Buffer.from(result.value.buffer, result.value.byteOffset, result.value.byteLength)
    this.buffer = this.buffer.byteLength === 0 ? chunk : Buffer.concat([this.buffer, chunk])
  }
}
