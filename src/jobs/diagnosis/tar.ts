import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { InvalidInputError, describeError } from '../../util/errors.js'

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

/** tar-stream's member types, in the words of a report. */
const TYPES: Record<string, string> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'hardlink',
  symlink: 'symlink',
  'character-device': 'char device',
  'block-device': 'block device',
  directory: 'directory',
  fifo: 'fifo'
}

/** pax records that tar-stream or this module fold into the member's fields; the rest are shown as they are. */
const FOLDED_PAX = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname', 'mtime'])

/** A member's header as tar-stream really hands it over: no type for an unknown type flag, no link name, and its pax records. */
type RawHeader = Omit<tar.Header, 'type' | 'linkname' | 'pax'> & { type: tar.Header['type'] | null, linkname: string | null, pax?: Record<string, string> | null }

/** A member: its header and its bytes. */
type TarEntry = AsyncIterable<Buffer> & { header: RawHeader }

/**
 * Whether a 512-byte block looks like a tar header: its checksum matches.
 * Only a sniff, to tell a tarball from other bytes; tar-stream parses.
 */
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
 * Walk a tar stream with tar-stream, calling `visit` with each member and its
 * bytes, which `visit` may read whole, in part or not at all (what it leaves
 * unread is skipped). Only reads:
 * nothing is written anywhere, so names need no sanitising here. Bounded by
 * the source (the caller bounds decompression) and by tar-stream's own limit
 * on pax and long-name records (4 MiB). A malformed archive is an
 * InvalidInputError; an error of the source itself is passed on unchanged.
 */
export async function scanTar (source: AsyncIterable<Uint8Array>, visit: (member: TarMember, body: AsyncIterable<Buffer>) => Promise<void>, shouldStop: (membersSoFar: number) => boolean): Promise<ScanResult> {
  // allowUnknownFormat: old (v7) archives without the ustar magic, which isTarHeader accepts too.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0])
  let sourceError: unknown
  // Only what the source itself throws counts as its error (not what the pipeline throws into it on the parser's failure).
  async function * watched (): AsyncGenerator<Uint8Array> {
    const iterator = source[Symbol.asyncIterator]()
    try {
      while (true) {
        let next: IteratorResult<Uint8Array>
        try {
          next = await iterator.next()
        } catch (err) {
          sourceError = err
          throw err
        }
        if (next.done === true) return
        yield next.value
      }
    } finally {
      await iterator.return?.()
    }
  }
  const feeding = pipeline(Readable.from(watched()), extract as unknown as NodeJS.WritableStream).then(() => undefined, (err: unknown) => err ?? new Error('the tar stream failed'))
  let members = 0
  let stopped = false
  let failure: unknown
  let visitError: { err: unknown } | undefined
  const bodyErrors = new Set<unknown>()
  try {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      if (shouldStop(members)) {
        stopped = true
        break
      }
      try {
        await visit(memberOf(entry.header), readFailures(entry, (err) => { bodyErrors.add(err) }))
      } catch (err) {
        // An error reading the member's bytes is the archive's; anything else is the visitor's own.
        if (!bodyErrors.has(err)) visitError = { err }
        throw err
      }
      for await (const _ of entry) { /* whatever `visit` left unread */ }
      members++
    }
  } catch (err) {
    failure = err
  }
  extract.destroy()
  const fed = await feeding
  if (stopped) return { members, complete: false }
  failure ??= fed
  if (failure === undefined) return { members, complete: true }
  // The visitor's own error and the source's (e.g. past the decompression bound) pass unchanged: the parser only reacted to them.
  if (visitError !== undefined) throw visitError.err
  if (sourceError !== undefined) throw sourceError
  if (failure instanceof InvalidInputError) throw failure
  throw new InvalidInputError(`not a valid tar archive (after ${members} members): ${describeError(failure)}`, { cause: failure })
}

/** The bytes of `body`, telling `failed` about an error in reading them before passing it on. */
async function * readFailures (body: AsyncIterable<Buffer>, failed: (err: unknown) => void): AsyncGenerator<Buffer> {
  const iterator = body[Symbol.asyncIterator]()
  while (true) {
    let next: IteratorResult<Buffer>
    try {
      next = await iterator.next()
    } catch (err) {
      failed(err)
      throw err
    }
    if (next.done === true) return
    yield next.value
  }
}

function memberOf (header: TarEntry['header']): TarMember {
  const pax = header.pax ?? {}
  const number = (key: string, fallback: number): number => pax[key] !== undefined ? Number(pax[key]) : fallback
  const size = header.size
  const name = header.name
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInputError(`tar member ${JSON.stringify(name)} has an invalid size`)
  return {
    name,
    type: header.type === null ? 'unknown type' : TYPES[header.type] ?? header.type,
    size,
    mode: header.mode,
    uid: number('uid', header.uid),
    gid: number('gid', header.gid),
    uname: pax.uname ?? header.uname,
    gname: pax.gname ?? header.gname,
    // pax keeps sub-second times ("1700000000.25"); the header has whole seconds.
    mtime: number('mtime', header.mtime.getTime() / 1000),
    linkname: header.linkname ?? '',
    pax: Object.entries(pax)
      .filter(([key]) => !FOLDED_PAX.has(key))
      .map(([key, value]) => `${key}=${value}`)
      .sort()
      .join(' ')
  }
}

function parseOctal (block: Uint8Array, offset: number, length: number): number | undefined {
  const text = Buffer.from(block.subarray(offset, offset + length)).toString('latin1').replace(/[\0 ]+$/, '').trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) return undefined
  return parseInt(text, 8)
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
