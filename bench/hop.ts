import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createMeshLibp2p, type MeshLibp2p } from '../src/gossip/libp2p.js'
import { waitFor } from '../src/util/wait.js'
import { percentile, round } from './stats.js'

/**
 * One gossip hop between two processes on loopback, raw: the stack every
 * node runs (createMeshLibp2p: TCP, Noise, Yamux, gossipsub with strict
 * signing) and nothing of buildhaus's. A message of an entry's size is
 * published on one topic; the other process publishes it back on another
 * as soon as gossipsub hands it over; half the round trip is one hop. The
 * baseline of a buildhaus hop (bench/user.ts with BENCH_TRACE: published on
 * one node → validated on another → stored → acted on).
 *
 * `node dist/bench/hop.js [messages]` (default 300, one at a time, after 20 untimed).
 */
const PING = 'bench/hop/ping'
const PONG = 'bench/hop/pong'

async function node (bootstrap?: string): Promise<MeshLibp2p> {
  return await createMeshLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topics: [PING, PONG],
    ...(bootstrap !== undefined ? { bootstrap: [bootstrap] } : {})
  })
}

/** The other process: publish back every ping as a pong. */
async function echo (): Promise<void> {
  const libp2p = await node()
  const pubsub = libp2p.services.pubsub
  pubsub.subscribe(PING)
  pubsub.subscribe(PONG)
  pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic === PING) void pubsub.publish(PONG, evt.detail.data)
  })
  console.log(libp2p.getMultiaddrs()[0]!.toString())
  process.stdin.resume()
  process.stdin.once('end', () => { void Promise.resolve(libp2p.stop()).then(() => process.exit(0)) })
}

export async function benchHop (messages = 300, bytes = 1_000): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'echo'], { stdio: ['pipe', 'pipe', 'inherit'] })
  try {
    const address = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve)
      child.once('exit', () => { reject(new Error('the echo process ended before it listened')) })
    })
    const libp2p = await node(address)
    try {
      const pubsub = libp2p.services.pubsub
      pubsub.subscribe(PING)
      pubsub.subscribe(PONG)
      await waitFor(() => pubsub.getSubscribers(PING).length > 0 && pubsub.getSubscribers(PONG).length > 0, { timeoutMs: 30_000, intervalMs: 20, what: 'the two processes to share a mesh' })
      let wake: (() => void) | undefined
      pubsub.addEventListener('message', (evt) => { if (evt.detail.topic === PONG) wake?.() })
      const hops: number[] = []
      const payload = new Uint8Array(bytes)
      for (let i = 0; i < 20 + messages; i++) {
        payload.set(new TextEncoder().encode(`${i}:${Date.now()}`))
        const back = new Promise<void>((resolve) => { wake = resolve })
        const t0 = performance.now()
        await pubsub.publish(PING, payload)
        await back
        if (i >= 20) hops.push((performance.now() - t0) / 2)
      }
      hops.sort((a, b) => a - b)
      return {
        what: `gossipsub hop between two processes on loopback (createMeshLibp2p, ${bytes}-byte messages, one at a time): half the round trip`,
        messages,
        hopMs: { p50: round(percentile(hops, 0.5), 2), p95: round(percentile(hops, 0.95), 2), min: round(hops[0]!, 2) }
      }
    } finally {
      await libp2p.stop()
    }
  } finally {
    child.stdin!.end()
    await new Promise((resolve) => { if (child.exitCode !== null) resolve(undefined); else child.once('exit', resolve) })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv[2] === 'echo') await echo()
  else {
    const messages = Number(process.argv[2] ?? 300)
    if (!Number.isInteger(messages) || messages < 1) {
      console.error(`usage: node dist/bench/hop.js [messages]: messages is a whole number from 1 (default 300), not "${process.argv[2]}"`)
      process.exit(2)
    }
    console.log(JSON.stringify(await benchHop(messages), null, 2))
  }
}
