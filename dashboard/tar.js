// @ts-check
// Read buildhaus.json out of a source archive in the browser, so the page can
// submit a directory archive the way `buildhaus-node submit DIR` does: the
// archive goes up as it is (the node and its builders unpack it safely), and
// its spec goes with the job. Tar is 512-byte headers and padded contents
// (POSIX ustar, with pax and GNU long names); gzip is undone by the browser's
// DecompressionStream. Only the headers up to the spec are read.

export const SPEC_FILE_NAME = 'buildhaus.json'
/** The node refuses larger spec files (MAX_SPEC_FILE_BYTES). */
export const MAX_SPEC_BYTES = 64 * 1024
/** A pax or GNU long-name record larger than this is not a name. */
const MAX_META_BYTES = 64 * 1024
/** Give up looking after this much unpacked archive (a gzip bomb stops here). */
const MAX_SCAN_BYTES = 1024 * 1024 * 1024
const BLOCK = 512

export class ArchiveError extends Error {
  /** @param {string} message */
  constructor (message) {
    super(message)
    this.name = 'ArchiveError'
  }
}

/** Pulls exact byte counts out of a ReadableStream. */
class ByteReader {
  /** @param {ReadableStream<Uint8Array>} stream */
  constructor (stream) {
    this.reader = stream.getReader()
    /** @type {Uint8Array[]} */
    this.chunks = []
    this.buffered = 0
    this.consumed = 0
    this.done = false
  }

  /** @param {number} n */
  async fill (n) {
    while (this.buffered < n && !this.done) {
      const { value, done } = await this.reader.read()
      if (done) { this.done = true; break }
      if (value.byteLength > 0) {
        this.chunks.push(value)
        this.buffered += value.byteLength
      }
    }
  }

  /**
   * Exactly n bytes, or fewer at the end of the stream.
   * @param {number} n
   */
  async read (n) {
    await this.fill(n)
    const size = Math.min(n, this.buffered)
    const out = new Uint8Array(size)
    let at = 0
    while (at < size) {
      const chunk = this.chunks[0]
      if (chunk === undefined) break
      const take = Math.min(chunk.byteLength, size - at)
      out.set(chunk.subarray(0, take), at)
      at += take
      if (take === chunk.byteLength) this.chunks.shift()
      else this.chunks[0] = chunk.subarray(take)
    }
    this.buffered -= size
    this.consumed += size
    return out
  }

  /** @param {number} n */
  async skip (n) {
    let left = n
    while (left > 0) {
      const got = await this.read(Math.min(left, 1024 * 1024))
      if (got.byteLength === 0) throw new ArchiveError('the archive ends in the middle of a file: it is cut short or damaged')
      left -= got.byteLength
    }
  }

  cancel () {
    this.reader.cancel().catch(() => {})
  }
}

const decoder = new TextDecoder()

/**
 * @param {Uint8Array} block
 * @param {number} start
 * @param {number} length
 */
function text (block, start, length) {
  const field = block.subarray(start, start + length)
  const end = field.indexOf(0)
  return decoder.decode(end === -1 ? field : field.subarray(0, end))
}

/**
 * @param {Uint8Array} block
 * @param {number} start
 * @param {number} length
 */
function octal (block, start, length) {
  // GNU base-256 for large values: the high bit of the first byte is set.
  if (block[start] & 0x80) {
    let value = block[start] & 0x7f
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]
    return value
  }
  const digits = text(block, start, length).trim()
  if (digits === '') return 0
  if (!/^[0-7]+$/.test(digits)) throw new ArchiveError('this file is not a tar archive (a header has a malformed number)')
  return parseInt(digits, 8)
}

/** @param {Uint8Array} block */
function checksumOk (block) {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]
  return sum === octal(block, 148, 8)
}

/**
 * pax records: "<length> <key>=<value>\n"…
 * @param {Uint8Array} bytes
 * @returns {string | undefined}
 */
function paxPath (bytes) {
  const body = decoder.decode(bytes)
  let at = 0
  /** @type {string | undefined} */
  let path
  while (at < body.length) {
    const space = body.indexOf(' ', at)
    if (space === -1) break
    const length = Number(body.slice(at, space))
    if (!Number.isSafeInteger(length) || length <= 0) break
    const record = body.slice(space + 1, at + length - 1)
    const eq = record.indexOf('=')
    if (eq !== -1 && record.slice(0, eq) === 'path') path = record.slice(eq + 1)
    at += length
  }
  return path
}

/** @param {string} name */
function normalise (name) {
  let path = name
  while (path.startsWith('./')) path = path.slice(2)
  return path
}

/** @param {Blob} file */
async function isGzip (file) {
  const head = new Uint8Array(await file.slice(0, 2).arrayBuffer())
  return head[0] === 0x1f && head[1] === 0x8b
}

/**
 * The text of the top-level buildhaus.json of a .tar or .tar.gz (a File or
 * Blob). Throws ArchiveError saying what is wrong and what to do.
 * @param {Blob} file
 * @returns {Promise<string>}
 */
export async function readSpecFromArchive (file) {
  const gz = await isGzip(file)
  const stream = gz ? file.stream().pipeThrough(new DecompressionStream('gzip')) : file.stream()
  const reader = new ByteReader(stream)
  /** @type {string | undefined} */
  let nested
  try {
    /** @type {string | undefined} */
    let longName
    while (reader.consumed < MAX_SCAN_BYTES) {
      const block = await reader.read(BLOCK)
      if (block.byteLength === 0) break
      const first = reader.consumed === block.byteLength
      const notTar = `this file is not a tar archive${gz ? ' inside its gzip' : ''}; make one with: tar czf source.tar.gz -C DIR .`
      if (block.byteLength < BLOCK) throw new ArchiveError(first ? notTar : 'the archive ends in the middle of a header: it is cut short or damaged')
      if (block.every((b) => b === 0)) break
      if (!checksumOk(block)) throw new ArchiveError(first ? notTar : 'the archive is damaged (a header checksum does not match)')
      const size = octal(block, 124, 12)
      const type = String.fromCharCode(block[156] || 0x30)
      const padded = Math.ceil(size / BLOCK) * BLOCK
      if (type === 'x' || type === 'L') {
        if (size > MAX_META_BYTES) throw new ArchiveError('the archive has a file name record too large to be a name; it is damaged')
        const meta = await reader.read(padded)
        if (meta.byteLength < padded) throw new ArchiveError('the archive ends in the middle of a file: it is cut short or damaged')
        const content = meta.subarray(0, size)
        longName = type === 'x' ? paxPath(content) ?? longName : decoder.decode(content).replace(/\0+$/, '')
        continue
      }
      const magic = text(block, 257, 6)
      const prefix = magic.startsWith('ustar') ? text(block, 345, 155) : ''
      const rawName = longName ?? (prefix !== '' ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100))
      longName = undefined
      const name = normalise(rawName)
      const regular = type === '0' || type === '7'
      if (regular && name === SPEC_FILE_NAME) {
        if (size > MAX_SPEC_BYTES) throw new ArchiveError(`${SPEC_FILE_NAME} is ${size} bytes; the node takes at most ${MAX_SPEC_BYTES}`)
        const content = await reader.read(size)
        if (content.byteLength < size) throw new ArchiveError('the archive ends in the middle of buildhaus.json: it is cut short or damaged')
        try {
          return new TextDecoder('utf-8', { fatal: true }).decode(content)
        } catch {
          throw new ArchiveError(`${SPEC_FILE_NAME} is not UTF-8 text`)
        }
      }
      if (regular && name.endsWith(`/${SPEC_FILE_NAME}`) && nested === undefined) nested = name
      await reader.skip(padded)
    }
  } catch (err) {
    if (err instanceof ArchiveError) throw err
    if (err instanceof TypeError && gz) throw new ArchiveError('the gzip data of this file is damaged; pack it again')
    throw new ArchiveError(`could not read the archive: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    reader.cancel()
  }
  if (nested !== undefined) {
    const dir = nested.slice(0, -SPEC_FILE_NAME.length - 1)
    throw new ArchiveError(`${SPEC_FILE_NAME} is inside ${dir}/, not at the top of the archive; pack the directory's contents instead: tar czf source.tar.gz -C ${dir} .`)
  }
  throw new ArchiveError(`the archive has no ${SPEC_FILE_NAME} at its top level; add one describing the job (see examples/hello in buildhaus)`)
}
