import { pathToFileURL } from 'node:url'
import { generateNodeKey } from '../src/crypto/keys.js'
import { authorOfPeerId, libp2pPrivateKey } from '../src/crypto/peer-id.js'
import { createSigner } from '../src/crypto/sign.js'
import { createMeshLibp2p } from '../src/gossip/libp2p.js'
import { attestations, foldJob, provenanceSigningInput, type JobBody } from '../src/jobs/index.js'
import { LiveLogHub, LiveLogService, liveKey } from '../src/livelog/index.js'
import { waitFor } from '../src/util/wait.js'
import { EntryCodec, type EntryBody } from '../src/ledger/entry.js'
import { jobEntryRules } from '../src/jobs/index.js'
import { spread, round } from './stats.js'

export interface WatchesBenchOptions {
  /** Lines printed by the builder for the latency figure (default 200). */
  lines?: number
  /** Results signed and envelopes assembled (default 200). */
  results?: number
}

/**
 * The costs this stream added, on one process: a live log line from a
 * builder's hub to a follower's hub over libp2p on loopback (latency, and
 * the characters a second one follow carries), signing a result's provenance
 * statement, and assembling and checking an envelope from a folded job.
 */
export async function benchWatches (options: WatchesBenchOptions = {}): Promise<Record<string, unknown>> {
  const lines = options.lines ?? 200
  const results = options.results ?? 200
  const builderNet = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
  const followerNet = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
  try {
    const builderHub = new LiveLogHub()
    const followerHub = new LiveLogHub()
    const builderAuthor = authorOfPeerId(builderNet.peerId)
    const builder = new LiveLogService({ network: builderNet, hub: builderHub, self: builderAuthor })
    // The rate bound off for the throughput figure: it measures the protocol, not the bound.
    const follower = new LiveLogService({ network: followerNet, hub: followerHub, self: authorOfPeerId(followerNet.peerId) }, { rateCharsPerS: 1e12, burstChars: 1e12, maxFollowChars: 1e12 })
    await builder.start()
    await follower.start()
    await followerNet.dial(builderNet.getMultiaddrs()[0]!)
    const job = 'b'.repeat(64)
    const key = liveKey(job, 'linux-x64', builderAuthor)
    builderHub.open(key)
    const following = follower.follow(builderNet.peerId, builderAuthor, job, 'linux-x64', { signal: AbortSignal.timeout(120_000) })
    await waitFor(() => followerHub.has(key), { timeoutMs: 10_000, what: 'the follow to start' })
    const latencies: number[] = []
    for (let i = 0; i < lines; i++) {
      const line = `line ${i} ${'x'.repeat(60)}\n`
      const started = performance.now()
      builderHub.append(key, line)
      await waitFor(() => followerHub.snapshot(key)!.text.endsWith(line), { timeoutMs: 5_000, intervalMs: 0 })
      latencies.push(performance.now() - started)
    }
    const chunk = 'y'.repeat(16 * 1024)
    const total = 32 * 1024 * 1024
    const before = followerHub.snapshot(key)!
    const target = before.offset + before.text.length + total
    const started = performance.now()
    for (let sent = 0; sent < total; sent += chunk.length) builderHub.append(key, chunk)
    await waitFor(() => { const s = followerHub.snapshot(key)!; return s.offset + s.text.length >= target }, { timeoutMs: 120_000, intervalMs: 5 })
    const throughput = total / ((performance.now() - started) / 1000)
    builderHub.end(key)
    await following

    const codec = new EntryCodec(jobEntryRules)
    const [submitter, a, b] = [createSigner(generateNodeKey()), createSigner(generateNodeKey()), createSigner(generateNodeKey())]
    const now = Date.now()
    const body: JobBody = { name: 'bench', source: 'c'.repeat(64), sourceSize: 1, steps: [{ name: 'build', run: 'true' }], platforms: [{ selector: 'linux-x64', labels: ['linux-x64'], replicas: 2 }], artifacts: ['dist/*'], independent: [], timeout: 60, limits: {}, network: false, root: false }
    const entry = codec.create(submitter, { seq: 0, prev: null, clock: 1, time: now, type: 'job', body: body as unknown as EntryBody })
    const jobView = { id: entry.id, time: entry.entry.time, spec: body }
    const artifacts = Array.from({ length: 8 }, (_, i) => ({ path: `dist/file-${i}.bin`, sha256: String(i).repeat(64).slice(0, 64), size: 1000 }))
    const signer = createSigner(generateNodeKey())
    let t = performance.now()
    for (let i = 0; i < results; i++) signer.sign(provenanceSigningInput(jobView, 'linux-x64', artifacts))
    const signMs = (performance.now() - t) / results
    const result = (author: typeof a, clock: number) => codec.create(author, { seq: 0, prev: null, clock, time: now, type: 'result', body: { job: entry.id, platform: 'linux-x64', status: 'pass', steps: [], log: null, logSize: 0, artifacts, env: { os: 'linux', kernel: 'k', arch: 'x64', sandbox: 'bubblewrap', tools: {} }, start: now, end: now, provenance: Buffer.from(author.sign(provenanceSigningInput(jobView, 'linux-x64', artifacts))).toString('hex') } as unknown as EntryBody })
    const view = foldJob(entry, [result(a, 2), result(b, 3)])
    t = performance.now()
    for (let i = 0; i < results; i++) attestations(view)
    const assembleMs = (performance.now() - t) / results
    return {
      liveLogLineMs: spread(latencies, 2),
      liveLogCharsPerS: Math.round(throughput),
      provenanceSignMs: round(signMs, 3),
      envelopeAssembleMs: round(assembleMs, 3),
      note: 'live log: one line from the builder\'s hub to the follower\'s over libp2p on loopback (one process); chars/s with the follower\'s rate bound lifted (the default bound is 65,536/s per slot). Provenance: 8 artifacts; assembling checks 2 signatures.'
    }
  } finally {
    await followerNet.stop()
    await builderNet.stop()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchWatches(), null, 2))
  process.exit(0)
}
