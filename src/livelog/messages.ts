import { InvalidInputError } from '../util/errors.js'
import { parseJsonFrame } from '../util/json-frame.js'
import { MAX_FRAME_BYTES, MAX_FRAME_CHARS, MAX_REQUEST_BYTES } from './constants.js'

/**
 * Wire messages of the live log protocol, each one length-prefixed frame of
 * UTF-8 JSON: the follower's request, the builder's header, then frames of
 * text (`o` is the offset of `t` in everything the run printed), pings, and
 * one `end`.
 */
export interface FollowRequest {
  job: string
  platform: string
  /** First character wanted (0: from the start, as far as the backlog reaches). */
  offset: number
}

export type FollowHeader = { status: 'live' } | { status: 'unknown' } | { status: 'busy' }

export type FollowFrame =
  | { o: number, t: string }
  | { ping: true }
  | { end: true }

const HEX64 = /^[0-9a-f]{64}$/
const SELECTOR = /^[a-z0-9][a-z0-9._-]*(\+[a-z0-9][a-z0-9._-]*)*$/
const encoder = new TextEncoder()

export function encode (message: FollowRequest | FollowHeader | FollowFrame): Uint8Array {
  return encoder.encode(JSON.stringify(message))
}

export function decodeRequest (bytes: Uint8Array): FollowRequest {
  const value = parseJsonFrame(bytes, MAX_REQUEST_BYTES, 'request')
  const { job, platform, offset } = value
  if (Object.keys(value).length !== 3 || typeof job !== 'string' || !HEX64.test(job) || typeof platform !== 'string' || platform.length > 512 ||
    !SELECTOR.test(platform) || !Number.isSafeInteger(offset) || (offset as number) < 0) {
    throw new InvalidInputError('the live log request must be {"job": <64 hex>, "platform": <selector>, "offset": <whole number>}')
  }
  return { job, platform, offset: offset as number }
}

export function decodeHeader (bytes: Uint8Array): FollowHeader {
  const value = parseJsonFrame(bytes, MAX_REQUEST_BYTES, 'header')
  if (value.status === 'live' || value.status === 'unknown' || value.status === 'busy') return { status: value.status }
  throw new InvalidInputError(`the live log header has an unknown status ${JSON.stringify(value.status)}`)
}

export function decodeFrame (bytes: Uint8Array): FollowFrame {
  const value = parseJsonFrame(bytes, MAX_FRAME_BYTES, 'frame')
  if (value.ping === true) return { ping: true }
  if (value.end === true) return { end: true }
  if (Number.isSafeInteger(value.o) && (value.o as number) >= 0 && typeof value.t === 'string' && value.t.length <= MAX_FRAME_CHARS) {
    return { o: value.o as number, t: value.t }
  }
  throw new InvalidInputError('a live log frame must be {"o": offset, "t": text of at most 16384 characters}, {"ping": true} or {"end": true}')
}
