import { z } from 'zod'
import type { Uint8ArrayList } from 'uint8arraylist'
import { SyncProtocolError } from '../errors.js'
import { MAX_ENTRIES_PER_FRAME, MAX_HEADS_PER_FRAME, SUMMARY_BUCKETS } from './constants.js'

/**
 * A sync frame is UTF-8 text: one line of JSON (the header, member `t` names
 * the kind), then for `entries` and `fork` frames the entry lines, each
 * after a newline. Entry lines are canonical JSON, which never contains a raw
 * newline, so no escaping is needed and the receiver reads them as they are.
 */
export type SyncFrame =
  | { t: 'digest', all: string | null, buckets?: string[] }
  | { t: 'heads', heads: HeadTriple[], more: boolean, want?: string[] | null, forked?: string[], buckets?: number[] }
  | { t: 'entries', lines: string[] }
  | { t: 'fork', lines: [string, string] }
  | { t: 'end', more: boolean }
  | { t: 'done' }

/** [author, seq, id] of one chain head. */
export type HeadTriple = [string, number, string]

const hex32 = z.string().regex(/^[0-9a-f]{64}$/)
const authors = z.array(hex32).max(MAX_HEADS_PER_FRAME)
const headerSchema = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('digest'), all: hex32.nullable(), buckets: z.array(hex32).length(SUMMARY_BUCKETS).optional() }),
  z.strictObject({
    t: z.literal('heads'),
    heads: z.array(z.tuple([hex32, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), hex32])).max(MAX_HEADS_PER_FRAME),
    more: z.boolean(),
    want: authors.nullable().optional(),
    forked: authors.optional(),
    // A digest session's dialer: the buckets whose heads it sends (their digests differ).
    buckets: z.array(z.number().int().min(0).max(SUMMARY_BUCKETS - 1)).max(SUMMARY_BUCKETS).optional()
  }),
  z.strictObject({ t: z.literal('entries'), n: z.number().int().min(1).max(MAX_ENTRIES_PER_FRAME) }),
  z.strictObject({ t: z.literal('fork') }),
  z.strictObject({ t: z.literal('end'), more: z.boolean() }),
  z.strictObject({ t: z.literal('done') })
])

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame (frame: SyncFrame): Uint8Array {
  switch (frame.t) {
    case 'entries':
      return encoder.encode(`{"n":${frame.lines.length},"t":"entries"}\n${frame.lines.join('\n')}`)
    case 'fork':
      return encoder.encode(`{"t":"fork"}\n${frame.lines[0]}\n${frame.lines[1]}`)
    default:
      return encoder.encode(JSON.stringify(frame))
  }
}

/** Parse one frame; anything malformed is a SyncProtocolError (the caller aborts the stream). */
export function decodeFrame (bytes: Uint8Array | Uint8ArrayList): SyncFrame {
  let text: string
  try {
    text = decoder.decode(bytes instanceof Uint8Array ? bytes : bytes.subarray())
  } catch {
    throw new SyncProtocolError('the peer sent a sync frame that is not UTF-8')
  }
  const newline = text.indexOf('\n')
  const headerText = newline < 0 ? text : text.slice(0, newline)
  let header: z.infer<typeof headerSchema>
  try {
    header = headerSchema.parse(JSON.parse(headerText))
  } catch {
    throw new SyncProtocolError('the peer sent a sync frame with a malformed header')
  }
  const lines = newline < 0 ? [] : text.slice(newline + 1).split('\n')
  switch (header.t) {
    case 'entries':
      if (lines.length !== header.n) throw new SyncProtocolError(`the peer's entries frame announces ${header.n} lines but holds ${lines.length}`)
      return { t: 'entries', lines }
    case 'fork':
      if (lines.length !== 2) throw new SyncProtocolError(`the peer's fork frame holds ${lines.length} lines instead of 2`)
      return { t: 'fork', lines: [lines[0]!, lines[1]!] }
    default:
      if (newline >= 0) throw new SyncProtocolError(`the peer's ${header.t} frame has trailing data`)
      return header as SyncFrame
  }
}
