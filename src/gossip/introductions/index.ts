import { Introductions, type IntroductionsComponents, type IntroductionsInit } from './introductions.js'

export { Introductions }
export type { IntroductionsComponents, IntroductionsInit, IntroductionsNetwork, IntroductionsStats } from './introductions.js'
export * from './constants.js'

/**
 * Introductions (`/buildhaus/introductions/1.0.0`): how members that met
 * only through gossip learn where to dial each other, without dialing what a
 * heartbeat merely claims. A node asks the peers it trusts (its bootstrap
 * peers, members) whom they are connected to; each answers with addresses it
 * proved or observed on its own connections. Call `start()` after libp2p.
 */
export function createIntroductions (components: IntroductionsComponents, init: IntroductionsInit = {}): Introductions {
  return new Introductions(components, init)
}
