import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { InvalidHeartbeatError } from '../errors.js'
import {
  HEARTBEAT_VERSION, MAX_ADDRESS_LENGTH, MAX_ADDRESSES, MAX_API_URL_LENGTH, MAX_HEARTBEAT_BYTES, MAX_HEARTBEAT_INTERVAL_MS, MIN_HEARTBEAT_INTERVAL_MS, MAX_LABEL_LENGTH, MAX_PLATFORMS, MAX_RUNNING,
  MAX_SLOTS, MAX_VERSION_LENGTH, PLATFORM_LABEL_PATTERN, RUNNING_ITEM_PATTERN, MAX_ENVIRONMENTS
} from './constants.js'

const label = z.string().max(MAX_LABEL_LENGTH).regex(PLATFORM_LABEL_PATTERN, 'expected a platform label such as linux-x64')
const count = z.number().int().min(0).max(MAX_SLOTS)

const apiUrl = z.string().max(MAX_API_URL_LENGTH).refine((value) => {
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}, 'expected an http(s) URL')

const address = z.string().max(MAX_ADDRESS_LENGTH).refine((value) => {
  try {
    multiaddr(value)
    return value.startsWith('/')
  } catch {
    return false
  }
}, 'expected a multiaddr')

/**
 * One heartbeat. Unknown fields are dropped, not refused, so a later release
 * may add optional fields within version 1; a change of meaning bumps `v` and
 * the topic.
 */
export const heartbeatSchema = z.object({
  v: z.literal(HEARTBEAT_VERSION),
  platforms: z.array(label).max(MAX_PLATFORMS),
  slots: count,
  free: count,
  running: z.array(z.string().regex(RUNNING_ITEM_PATTERN, 'expected "<job id>/<selector>"')).max(MAX_RUNNING),
  accepts: z.object({ network: z.boolean(), root: z.boolean() }),
  /**
   * Environments the sender has ready to build in (each also one of its
   * platforms). Optional within version 1: older nodes drop the field, and
   * a node that sends none offers none.
   */
  environments: z.array(label).max(MAX_ENVIRONMENTS).optional(),
  /** The sender polls watches (added with watches; absent: it does not). */
  polls: z.boolean().optional(),
  version: z.string().min(1).max(MAX_VERSION_LENGTH).regex(/^[\x21-\x7e]+$/, 'expected a printable version string'),
  api: apiUrl.optional(),
  /**
   * Where the sender listens (multiaddrs without /p2p/). Not in the first
   * draft of the format: added so that members who met only through gossip
   * can dial each other, and the mesh survives losing its bootstrap peers.
   */
  addrs: z.array(address).max(MAX_ADDRESSES).optional(),
  /**
   * The sender's next heartbeat comes within this many ms (its interval,
   * which grows with the mesh). Receivers wait that much longer before they
   * count it gone. Absent: the default interval.
   */
  every: z.number().int().min(MIN_HEARTBEAT_INTERVAL_MS).max(MAX_HEARTBEAT_INTERVAL_MS).optional(),
  time: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
}).refine((h) => h.free <= h.slots, { message: 'free must not exceed slots', path: ['free'] })

export type Heartbeat = z.infer<typeof heartbeatSchema>

/** Serialise a heartbeat; throws InvalidHeartbeatError if it would not pass a receiver's checks. */
export function encodeHeartbeat (heartbeat: Heartbeat): Uint8Array {
  const checked = parseHeartbeat(heartbeat)
  const bytes = Buffer.from(JSON.stringify(checked), 'utf8')
  if (bytes.length > MAX_HEARTBEAT_BYTES) throw new InvalidHeartbeatError(`the heartbeat is ${bytes.length} bytes, more than the ${MAX_HEARTBEAT_BYTES} allowed; list fewer running builds`)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Parse received bytes, bounded in size; throws InvalidHeartbeatError saying what is wrong. */
export function decodeHeartbeat (data: Uint8Array): Heartbeat {
  if (data.byteLength > MAX_HEARTBEAT_BYTES) throw new InvalidHeartbeatError(`heartbeat of ${data.byteLength} bytes exceeds the ${MAX_HEARTBEAT_BYTES}-byte limit`)
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data))
  } catch {
    throw new InvalidHeartbeatError('heartbeat is not UTF-8 JSON')
  }
  return parseHeartbeat(value)
}

function parseHeartbeat (value: unknown): Heartbeat {
  const result = heartbeatSchema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const where = issue !== undefined && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : ''
    throw new InvalidHeartbeatError(`malformed heartbeat${where}: ${issue?.message ?? 'invalid'}`)
  }
  return result.data
}
