import { InvalidInputError } from '../../util/errors.js'
import { parseJsonFrame } from '../../util/json-frame.js'
import { isBlobHash } from '../hash.js'
import { MAX_HEADER_BYTES, MAX_REQUEST_BYTES } from './constants.js'

/**
 * Wire messages of the blob protocol, each one length-prefixed frame of UTF-8
 * JSON. After a `found` header come data frames carrying exactly `size` bytes,
 * then the server closes its side.
 */
export interface BlobRequest {
  hash: string
}

export type BlobResponseHeader =
  | { status: 'found', size: number }
  | { status: 'missing' }
  | { status: 'busy' }

const encoder = new TextEncoder()

export function encodeRequest (request: BlobRequest): Uint8Array {
  return encoder.encode(JSON.stringify({ hash: request.hash }))
}

export function decodeRequest (bytes: Uint8Array): BlobRequest {
  const value = parseJsonFrame(bytes, MAX_REQUEST_BYTES, 'request')
  if (Object.keys(value).length !== 1 || !isBlobHash(value.hash)) throw new InvalidInputError('the blob request must be {"hash": <64 lower-case hex digits>}')
  return { hash: value.hash }
}

export function encodeHeader (header: BlobResponseHeader): Uint8Array {
  return encoder.encode(JSON.stringify(header))
}

export function decodeHeader (bytes: Uint8Array): BlobResponseHeader {
  const value = parseJsonFrame(bytes, MAX_HEADER_BYTES, 'response header')
  switch (value.status) {
    case 'found':
      if (!Number.isSafeInteger(value.size) || (value.size as number) < 0) throw new InvalidInputError(`the response header announced an invalid size ${JSON.stringify(value.size)}`)
      return { status: 'found', size: value.size as number }
    case 'missing':
    case 'busy':
      return { status: value.status }
    default:
      throw new InvalidInputError(`the response header has an unknown status ${JSON.stringify(value.status)}`)
  }
}

