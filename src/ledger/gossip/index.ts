import type { Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Admission } from '../admission/index.js'
import type { LedgerStore } from '../store.js'
import { EntryGossip } from './entry-gossip.js'

export { EntryGossip, type EntryGossipStats } from './entry-gossip.js'
export * from './constants.js'

/** The part of a pubsub service the gossip fast path uses. libp2p's gossipsub fits. */
export interface GossipPubSub {
  topicValidators: Map<string, TopicValidatorFn>
  subscribe (topic: string): void
  unsubscribe (topic: string): void
  publish (topic: string, data: Uint8Array): Promise<unknown>
  addEventListener (type: 'message', listener: (evt: CustomEvent<Message>) => void): void
  removeEventListener (type: 'message', listener: (evt: CustomEvent<Message>) => void): void
}

export interface EntryGossipComponents {
  pubsub: GossipPubSub
  store: LedgerStore
  /** Quotas (shared with sync). Without them every valid entry is taken, as in the ledger's own tests. */
  admission?: Admission
}

export function entryGossip (components: EntryGossipComponents): EntryGossip {
  return new EntryGossip(components)
}
