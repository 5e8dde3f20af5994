/**
 * Default API address: loopback only, the documented port. A module of its
 * own, without imports, so that `join --help` can show it without loading
 * config.ts (which loads libp2p).
 */
export const DEFAULT_API_HOST = '127.0.0.1'
export const DEFAULT_API_PORT = 4711
