import { createReadStream, createWriteStream } from 'node:fs'
import { Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { MAX_ENTRY_BYTES } from './constants.js'

/** What exportLines needs of a store. */
export interface ExportSource {
  exportLines (): AsyncIterable<string>
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
