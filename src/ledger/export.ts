import { createReadStream, createWriteStream } from 'node:fs'
import { Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Level } from 'level'
import { MAX_ENTRY_BYTES } from './constants.js'
import { keys, parseChainKey, parseForkKey } from './store-keys.js'

/** What exportLines needs of a store. */
export interface ExportSource {
  exportLines (): AsyncIterable<string>
}

/**
 * Every entry in the store's LevelDB, one canonical line each, in an order in
 * which every chain verifies: authors in ascending hex order; each author's
 * chain by seq from 0; then that author's fork evidence by seq
 * (docs/FORMAT.md). What LedgerStore.exportLines yields.
 */
export async function * exportLinesOf (db: Level<string, string>): AsyncGenerator<string> {
  const evidence = new Map<string, string[]>()
  for await (const [key, line] of db.iterator(keys.allForks())) {
    const { author } = parseForkKey(key)
    const list = evidence.get(author) ?? []
    list.push(line)
    evidence.set(author, list)
  }
  const evidenceAuthors = [...evidence.keys()].sort()
  let current: string | undefined
  const flushUpTo = function * (author: string | undefined): Generator<string> {
    // Evidence of authors up to and including `author` that is not yet out (undefined: all).
    while (evidenceAuthors.length > 0 && (author === undefined || evidenceAuthors[0]! <= author)) {
      yield * evidence.get(evidenceAuthors.shift()!)!
    }
  }
  for await (const [key, line] of db.iterator(keys.allChains())) {
    const { author } = parseChainKey(key)
    if (author !== current) {
      if (current !== undefined) yield * flushUpTo(current)
      // Authors with evidence only, sorting before this one.
      while (evidenceAuthors.length > 0 && evidenceAuthors[0]! < author) yield * evidence.get(evidenceAuthors.shift()!)!
      current = author
    }
    yield line
  }
  yield * flushUpTo(undefined)
}

export interface ExportSummary {
  lines: number
  bytes: number
}

/**
 * The NDJSON export: every entry's canonical line followed by "\n", in the
 * store's export order (docs/FORMAT.md § Export), streamed with backpressure.
 */
export async function writeExport (store: ExportSource, destination: Writable | string): Promise<ExportSummary> {
  const summary: ExportSummary = { lines: 0, bytes: 0 }
  const out = typeof destination === 'string' ? createWriteStream(destination, { flags: 'wx' }) : destination
  await pipeline(Readable.from(ndjson(store, summary)), out, { end: typeof destination === 'string' })
  return summary
}

async function * ndjson (store: ExportSource, summary: ExportSummary): AsyncGenerator<string> {
  let chunk = ''
  for await (const line of store.exportLines()) {
    chunk += line + '\n'
    summary.lines++
    summary.bytes += Buffer.byteLength(line) + 1
    // Fewer, larger writes: per-line chunks make the stream machinery the bottleneck.
    if (chunk.length >= 64 * 1024) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk.length > 0) yield chunk
}

export interface ReadLinesOptions {
  /** Lines longer than this are cut here (their entry is then reported too large, not buffered). */
  maxLineBytes?: number
}

/**
 * Split a byte stream (a file, an HTTP body, stdin) into lines, as raw bytes,
 * without decoding: the audit decodes them strictly, so a byte that is not
 * UTF-8 is reported rather than silently replaced. A final line without a
 * newline counts; the empty string after a final newline does not. Memory
 * stays bounded by maxLineBytes whatever the input.
 */
export async function * readLines (source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, options: ReadLinesOptions = {}): AsyncGenerator<Uint8Array> {
  const limit = options.maxLineBytes ?? MAX_ENTRY_BYTES + 1
  let parts: Buffer[] = []
  let length = 0
  let overflow = false
  const take = (): Buffer => {
    const line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length)
    parts = []
    length = 0
    overflow = false
    return line
  }
  const append = (piece: Buffer): void => {
    if (overflow) return
    const room = limit - length
    if (piece.length > room) {
      parts.push(piece.subarray(0, room))
      length += room
      overflow = true
      return
    }
    parts.push(piece)
    length += piece.length
  }
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    let start = 0
    while (start <= bytes.length) {
      const newline = bytes.indexOf(0x0a, start)
      if (newline < 0) {
        if (start < bytes.length) append(bytes.subarray(start))
        break
      }
      append(bytes.subarray(start, newline))
      yield take()
      start = newline + 1
    }
  }
  if (length > 0 || overflow) yield take()
}

/** The lines of an export file, for auditLines. */
export function readExportFile (path: string, options: ReadLinesOptions = {}): AsyncGenerator<Uint8Array> {
  return readLines(createReadStream(path, { highWaterMark: 256 * 1024 }), options)
}
