import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createMeshLibp2p } from '../src/gossip/libp2p.js'
import { waitFor } from '../src/util/wait.js'

/**
 * The baseline process for bench/mesh.ts: a bare libp2p node with the same
 * stack as buildhaus (createMeshLibp2p: TCP, Noise, Yamux, identify,
 * gossipsub) and none of buildhaus's services (no key file, presence, keeper
 * or API). Usage: node dist/bench/raw-node.js LISTEN [BOOTSTRAP]
 */
const [listen = '/ip4/127.0.0.1/tcp/0', bootstrap] = process.argv.slice(2)
const node = await createMeshLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [listen] })
node.services.pubsub.subscribe('buildhaus/bench/1')
if (bootstrap !== undefined) {
  await waitFor(async () => await node.dial(multiaddr(bootstrap)).then(() => true), { timeoutMs: 10_000, intervalMs: 500, what: 'the bootstrap peer' })
}
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid, peerId: node.peerId.toString(), listen: node.getMultiaddrs().map(String) })}\n`)
const stop = (): void => {
  Promise.resolve(node.stop()).then(() => { process.exit(0) }, () => { process.exit(1) })
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
