import type { Multiaddr } from '@multiformats/multiaddr'
import { isCircuit, isPublicAddress } from './addresses.js'
import type { RelayMode } from './services.js'

/**
 * How others can reach this node:
 * - `public`: at a public address (bound on an interface, announced, mapped
 *   by UPnP, or verified by AutoNAT);
 * - `relayed`: through a relay it holds a reservation on;
 * - `private`: neither (it can dial out; only peers on its own network can dial it).
 */
export type Reachability = 'public' | 'relayed' | 'private'

/**
 * From the addresses libp2p announces (only verified ones) and whether the
 * node listens on a public address of its own.
 */
export function reachabilityOf (announced: Multiaddr[], boundPublic: boolean): Reachability {
  if (boundPublic || announced.some((a) => isPublicAddress(a))) return 'public'
  if (announced.some((a) => isCircuit(a))) return 'relayed'
  return 'private'
}

/** Whether a node in this relay mode serves as a relay at this reachability. */
export function servesRelay (mode: RelayMode, reachability: Reachability): boolean {
  return mode === 'on' || (mode === 'auto' && reachability === 'public')
}
