/** Live logs: the hub of running builds' output and the protocol that streams it to followers. */
export * from './constants.js'
export * from './hub.js'
export { LiveLogService, type LiveLogInit, type LiveLogNetwork, type FollowOptions, type FollowOutcome, type LiveLogStats } from './service.js'
