import { join } from 'node:path'
import { generateNodeKey, type NodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createSigner } from '../../src/crypto/sign.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
import { ENTRIES_TOPIC, FORKS_TOPIC, entryGossip, type EntryGossip } from '../../src/ledger/gossip/index.js'
import { LedgerStore } from '../../src/ledger/store.js'
import { ledgerSync, type LedgerSync, type LedgerSyncInit } from '../../src/ledger/sync/index.js'
import { waitFor } from '../../src/util/wait.js'
import { tempDir } from '../helpers/temp-home.js'
import { collect, testCodec } from './helpers.js'

type Teardown = (fn: () => unknown) => void

/**
 * A ledger node as the daemon will wire it: real libp2p on loopback, real LevelDB, sync and gossip.
 * No job service and no membership (a layer above the ledger): these nodes count nobody's claims
 * or results, so no mesh definition or trust mode applies to them.
 */
export interface TestNode {
  key: NodeKey
  path: string
  libp2p: MeshLibp2p
  store: LedgerStore
  sync: LedgerSync
  gossip: EntryGossip
  stop: () => Promise<void>
}

export interface TestNodeOptions {
  key?: NodeKey
  /** LevelDB directory (reuse one to restart a node). */
  path?: string
  sync?: LedgerSyncInit
  /** Allow appends at once (default true); false leaves the self-fork guard closed. */
  allowAppend?: boolean
  pendingLimit?: number
}

export async function startNode (teardown: Teardown, options: TestNodeOptions = {}): Promise<TestNode> {
  const key = options.key ?? generateNodeKey()
  const path = options.path ?? join(await tempDir(teardown, 'buildhaus-ledger-node-'), 'ledger')
  const store = await LedgerStore.open({ path, codec: testCodec, signer: createSigner(key), ...(options.pendingLimit !== undefined ? { pendingLimit: options.pendingLimit } : {}) })
  if (options.allowAppend !== false) store.allowAppend()
  const libp2p = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(key), listen: ['/ip4/127.0.0.1/tcp/0'], topics: [ENTRIES_TOPIC, FORKS_TOPIC] })
  const sync = ledgerSync({ network: libp2p, store }, { intervalMs: 1_000, ...options.sync })
  const gossip = entryGossip({ pubsub: libp2p.services.pubsub, store })
  gossip.start()
  await sync.start()
  let stopped = false
  const node: TestNode = {
    key,
    path,
    libp2p,
    store,
    sync,
    gossip,
    stop: async () => {
      if (stopped) return
      stopped = true
      gossip.stop()
      await sync.stop()
      await libp2p.stop()
      await store.close()
    }
  }
  teardown(node.stop)
  return node
}

export async function connect (a: TestNode, b: TestNode): Promise<void> {
  await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
}

/** Hang up every connection between the two groups, and keep them apart by not dialing again. */
export async function partition (left: TestNode[], right: TestNode[]): Promise<void> {
  for (const a of left) {
    for (const b of right) await a.libp2p.hangUp(b.libp2p.peerId)
  }
}

export async function exportOf (node: TestNode): Promise<string[]> {
  return await collect(node.store.exportLines())
}

/** Wait until every node holds exactly `count` entries, then return their exports (which must then be equal). */
export async function converged (nodes: TestNode[], count: number, timeoutMs = 60_000): Promise<string[][]> {
  await waitFor(() => nodes.every((n) => n.store.count() === count), {
    timeoutMs,
    intervalMs: 100,
    what: `${nodes.length} nodes to hold ${count} entries (now ${nodes.map((n) => n.store.count()).join(', ')})`
  })
  return await Promise.all(nodes.map(exportOf))
}
