import { Presence, type PresenceComponents, type PresenceInit } from './presence.js'

export { Presence }
export type {
  LocalPresence, PresenceComponents, PresenceEvents, PresenceInit, PresenceMember, PresencePubsub, PresenceStats, PresenceUpdate, PresenceUpdateOptions
} from './presence.js'
export { decodeHeartbeat, encodeHeartbeat, heartbeatSchema, type Heartbeat } from './heartbeat.js'
export * from './constants.js'
export { clockSkew, MIN_CLOCK_PEERS, type ClockSample, type ClockSkew } from './clock-skew.js'

/**
 * Presence heartbeats on `buildhaus/presence/1`: who is in the mesh, what
 * platforms they build for, how many slots they have free and what they run.
 * Call `start()` after the libp2p node is started, `stop()` before stopping it.
 */
export function createPresence (components: PresenceComponents, init: PresenceInit): Presence {
  return new Presence(components, init)
}
