import { randomBytes } from 'node:crypto'
import * as lp from 'it-length-prefixed'
import type { Message } from '@libp2p/gossipsub'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { PROTOCOL as BLOB_PROTOCOL } from '../../src/blobs/exchange/constants.js'
import { generateNodeKey } from '../../src/crypto/keys.js'
import { libp2pPrivateKey } from '../../src/crypto/peer-id.js'
import { createSigner } from '../../src/crypto/sign.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/gossip/libp2p.js'
import { PRESENCE_TOPIC } from '../../src/gossip/presence/constants.js'
import { jobEntryRules } from '../../src/jobs/index.js'
import { EntryCodec } from '../../src/ledger/entry.js'
import { ENTRIES_TOPIC, FORKS_TOPIC } from '../../src/ledger/gossip/constants.js'
import { SYNC_PROTOCOL, SYNC_PROTOCOL_DIGEST } from '../../src/ledger/sync/constants.js'
import { canonicalJson } from '../../src/util/canonical-json.js'
import { delay, waitFor } from '../../src/util/wait.js'
import { collectState, compareLogs, forkEvidence, startCluster, waitForMesh, waitForSameLog, waitForVerdicts, type NodeProcess } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { sortJobDir } from '../helpers/job-dir.js'

const encoder = new TextEncoder()
const HEARTBEAT_SILENCE_MS = 6_000

/** Junk for the entries topic: random bytes, near-misses of the format, and forgeries of real entries. */
function junkEntries (realLines: string[], victimAuthor: string): Uint8Array[] {
  const rogue = createSigner(generateNodeKey())
  const codec = new EntryCodec(jobEntryRules)
  const junk: Uint8Array[] = [randomBytes(200), encoder.encode('{"v":1}'), encoder.encode('not json at all')]
  for (const line of realLines.slice(0, 20)) {
    // A real entry with one field changed: canonical, well-shaped, and its signature no longer matches.
    const entry = JSON.parse(line) as Record<string, unknown>
    junk.push(encoder.encode(canonicalJson({ ...entry, time: (entry.time as number) + 1 })))
  }
  // An entry claiming a victim as its author, signed with another key.
  const mine = codec.create(rogue, { seq: 0, prev: null, clock: 1, time: Date.now(), type: 'cancel', body: { job: 'a'.repeat(64) } })
  junk.push(encoder.encode(canonicalJson({ ...mine.entry, author: victimAuthor })))
  // A type no node knows.
  junk.push(encoder.encode(canonicalJson({ ...mine.entry, type: 'surprise' })))
  return junk
}

function junkHeartbeats (): Uint8Array[] {
  return [
    randomBytes(300),
    encoder.encode(JSON.stringify({ v: 1, platforms: ['linux-x64'], slots: 1, free: 9, running: [], accepts: { network: false, root: false }, version: 'x', time: Date.now() })),
    encoder.encode(JSON.stringify({ v: 7 })),
    encoder.encode('x'.repeat(20_000))
  ]
}

/** Open a protocol stream, send garbage in a well-formed length prefix, and report whether the victim closed it. */
async function garbageStream (rogue: MeshLibp2p, node: NodeProcess, protocol: string): Promise<Stream | undefined> {
  try {
    const stream = await rogue.dialProtocol(multiaddr(node.address), protocol, { signal: AbortSignal.timeout(5_000) })
    stream.send(lp.encode.single(randomBytes(2_000)))
    return stream
  } catch {
    // The victim refused the stream outright (too many of them): as good as aborting it.
    return undefined
  }
}

describe('a peer flooding garbage and forged entries', () => {
  const teardown = useTeardown()

  it('is cut off by the mesh (gossipsub stops talking to it), its streams are aborted, nothing of it is stored, and jobs still verify', async () => {
    const nodes = await startCluster(teardown, { size: 3, args: ['--platform', 'linux-x64'] })
    await waitForMesh(nodes)
    const scratch = await tempDir(teardown, 'buildhaus-flood-')
    // Some real entries to forge from.
    const warmup = await nodes[0]!.submit(await sortJobDir(scratch, { name: 'before-flood' }))
    await waitForVerdicts(nodes, [warmup.id])
    const realLines = await nodes[0]!.logLines()

    const rogue = await createMeshLibp2p({
      privateKey: await libp2pPrivateKey(generateNodeKey()),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      topics: [PRESENCE_TOPIC, ENTRIES_TOPIC, FORKS_TOPIC]
    })
    teardown(async () => { await rogue.stop() })
    const heard = new Map<string, number>()
    rogue.services.pubsub.addEventListener('message', (event: CustomEvent<Message>) => {
      if (event.detail.topic === PRESENCE_TOPIC && event.detail.type === 'signed') heard.set(event.detail.from.toString(), Date.now())
    })
    for (const topic of [PRESENCE_TOPIC, ENTRIES_TOPIC, FORKS_TOPIC]) rogue.services.pubsub.subscribe(topic)
    for (const node of nodes) await rogue.dial(multiaddr(node.address))
    // Before the flood the rogue is an ordinary member of the gossip mesh: it hears everyone's heartbeats.
    await waitFor(() => nodes.every((n) => heard.has(n.peerId)), { timeoutMs: 20_000, what: 'the rogue to hear every node\'s heartbeat' })

    const victimAuthor = (await nodes[1]!.health()).author
    const entryJunk = junkEntries(realLines, victimAuthor)
    const presenceJunk = junkHeartbeats()
    const forkJunk = [encoder.encode(`${realLines[0]!}\n${realLines[1]!}`), randomBytes(500)]
    let published = 0
    const streams: Stream[] = []
    const floodUntil = Date.now() + 10_000
    while (Date.now() < floodUntil) {
      const batch = [
        ...entryJunk.map((data) => ({ topic: ENTRIES_TOPIC, data })),
        ...presenceJunk.map((data) => ({ topic: PRESENCE_TOPIC, data })),
        ...forkJunk.map((data) => ({ topic: FORKS_TOPIC, data }))
      ]
      // Each junk message is new to gossipsub (its seqno differs), so each one is validated.
      await Promise.all(batch.map(async ({ topic, data }) => { await rogue.services.pubsub.publish(topic, data).then(() => { published++ }, () => {}) }))
      for (const node of nodes) {
        for (const protocol of [SYNC_PROTOCOL, SYNC_PROTOCOL_DIGEST, BLOB_PROTOCOL]) {
          const stream = await garbageStream(rogue, node, protocol)
          if (stream !== undefined) streams.push(stream)
        }
      }
      await delay(20)
    }
    console.log(`the rogue published ${published} junk messages and opened ${streams.length} garbage streams in 10 s`)

    // Cut off: every node has stopped sending it anything, its heartbeats included.
    await waitFor(() => [...heard.values()].every((at) => Date.now() - at > HEARTBEAT_SILENCE_MS), {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: `the rogue to hear no heartbeat for ${HEARTBEAT_SILENCE_MS} ms (cut off by every node)`
    })
    // Every garbage stream was aborted by its victim.
    await waitFor(() => streams.every((s) => s.status !== 'open'), { timeoutMs: 20_000, what: 'every garbage stream to be closed by the victims' })

    // The rest of the mesh carries on: members, a job to verified, the same log, none of the junk in it.
    await waitForMesh(nodes)
    const job = await nodes[2]!.submit(await sortJobDir(scratch, { name: 'after-flood' }))
    const verdicts = await waitForVerdicts(nodes, [warmup.id, job.id])
    expect(verdicts[job.id]).toBe('verified')
    await waitForSameLog(nodes)
    const states = await collectState(nodes)
    expect(compareLogs(states).identical).toBe(true)
    const authors = new Set(states[0]!.log.map((line) => (JSON.parse(line) as { author: string }).author))
    const members = new Set(await Promise.all(nodes.map(async (n) => (await n.health()).author)))
    expect([...authors].filter((a) => !members.has(a))).toEqual([])
    expect(forkEvidence(states)).toEqual([])
  }, 180_000)
})
