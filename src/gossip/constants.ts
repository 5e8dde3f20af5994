/** Default TCP port of `buildhaus-node join` (documented in the README). */
export const DEFAULT_P2P_PORT = 4710

/** Largest gossip message accepted (an entry is at most 64 KiB; room for the envelope). */
export const MAX_GOSSIP_MESSAGE_BYTES = 128 * 1024

/** How long a dial to one peer may take before it is abandoned. */
export const DIAL_TIMEOUT_MS = 5_000

/** How often the keeper re-dials bootstrap peers it is not connected to. */
export const REDIAL_INTERVAL_MS = 3_000
