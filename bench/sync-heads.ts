/**
 * Sync sessions between two nodes that hold many chains: what a session
 * costs in bytes, time and CPU with the heads' digests (sync 1.1.0) beside
 * the same sessions exchanging every head (sync 1.0.0), in the same run.
 * Two cases: the nodes hold the same heads (a quiet mesh), and one holds
 * two chains the other lacks (gossip lost them; a busy mesh's usual case is
 * a few heads apart).
 *
 *   npm run build && node dist/bench/sync-heads.js [chains…]
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Stream } from '@libp2p/interface'
import { generateNodeKey } from '../src/crypto/keys.js'
import { libp2pPrivateKey } from '../src/crypto/peer-id.js'
import { createSigner } from '../src/crypto/sign.js'
import { createMeshLibp2p, type MeshLibp2p } from '../src/gossip/libp2p.js'
import { EntryCodec } from '../src/ledger/entry.js'
import { LedgerStore } from '../src/ledger/store.js'
import { FRAME_TIMEOUT_MS, MAX_BYTES_PER_SESSION, MAX_ENTRIES_PER_SESSION, SESSION_TIMEOUT_MS, SYNC_PROTOCOL, SYNC_PROTOCOL_DIGEST } from '../src/ledger/sync/constants.js'
import { runSyncSession, type SessionResult } from '../src/ledger/sync/session.js'
import { componentLogger } from '../src/util/logger.js'
import { median, round } from './stats.js'

export interface SyncHeadsBenchOptions {
  /** Chains (authors) each node holds (default 1,000 and 10,000). */
  chains?: number[]
  /** Sessions timed per protocol and case, alternating (default 20). */
  sessions?: number
}

const codec = new EntryCodec({
  note: {
    validate (body) {
      if (typeof (body as { text?: unknown }).text !== 'string') throw new Error('text must be a string')
    }
  }
})

const log = componentLogger('bench:sync-heads')
const text = randomBytes(24).toString('hex')

/** One entry by each of `count` fresh authors. */
function lonelyChains (count: number): string[] {
  return Array.from({ length: count }, (_, i) => codec.create(createSigner(generateNodeKey()), { seq: 0, prev: null, clock: i, time: 1_767_225_600_000 + i, type: 'note', body: { text } }).line)
}

interface Side { store: LedgerStore, libp2p: MeshLibp2p }

const sessionOptions = (store: LedgerStore, role: 'dialer' | 'listener', digests: boolean): Parameters<typeof runSyncSession>[1] => ({
  store,
  role,
  digests,
  frameTimeoutMs: FRAME_TIMEOUT_MS,
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  maxEntriesPerSession: MAX_ENTRIES_PER_SESSION,
  maxBytesPerSession: MAX_BYTES_PER_SESSION,
  log
})

export async function benchSyncHeads (options: SyncHeadsBenchOptions = {}): Promise<Record<string, unknown>> {
  const sessions = options.sessions ?? 20
  const figures: Record<string, unknown> = {}
  for (const chains of options.chains ?? [1_000, 10_000]) figures[`chains${chains}`] = await benchAt(chains, sessions)
  return {
    what: 'one sync session between two nodes on loopback holding the same N chains (in sync), or one of them 2 chains ahead (apart); sync 1.1.0 (heads\' digests first) against 1.0.0 (every head), alternating in the same run; bytes both ways, wall time, CPU of both nodes (one process)',
    machine: { cores: availableParallelism(), node: process.version, loadAverage1m: round(loadavg()[0]!, 2) },
    ...figures
  }
}

async function benchAt (chains: number, sessions: number): Promise<Record<string, unknown>> {
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-sync-heads-'))
  const sides: Side[] = []
  try {
    const shared = lonelyChains(chains)
    for (const name of ['a', 'b']) {
      const store = await LedgerStore.open({ path: join(scratch, name), codec })
      for (let i = 0; i < shared.length; i += 2048) await store.ingest(shared.slice(i, i + 2048))
      const libp2p = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
      sides.push({ store, libp2p })
    }
    const [a, b] = sides as [Side, Side]
    const answered: Array<Promise<SessionResult>> = []
    await b.libp2p.handle([SYNC_PROTOCOL_DIGEST, SYNC_PROTOCOL], (stream: Stream) => {
      const session = runSyncSession(stream, sessionOptions(b.store, 'listener', stream.protocol === SYNC_PROTOCOL_DIGEST))
      session.catch(() => {})
      answered.push(session)
    })
    await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)

    const one = async (protocol: string): Promise<{ bytes: number, ms: number, cpuMs: number, heads: number, inSync: boolean }> => {
      const cpu = process.cpuUsage()
      const start = performance.now()
      const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, protocol)
      const mine = await runSyncSession(stream, sessionOptions(a.store, 'dialer', protocol === SYNC_PROTOCOL_DIGEST))
      const theirs = await answered.shift()!
      const ms = performance.now() - start
      const used = process.cpuUsage(cpu)
      return { bytes: mine.bytesSent + theirs.bytesSent, ms, cpuMs: (used.user + used.system) / 1000, heads: mine.headsSent + theirs.headsSent, inSync: mine.inSync }
    }
    const protocols = { digests: SYNC_PROTOCOL_DIGEST, everyHead: SYNC_PROTOCOL }
    const result: Record<string, unknown> = {}
    for (const apart of [false, true]) {
      const runs: Record<string, Array<Awaited<ReturnType<typeof one>>>> = { digests: [], everyHead: [] }
      for (let i = 0; i < sessions + 2; i++) {
        for (const [name, protocol] of Object.entries(protocols)) {
          // Two chains that only `a` holds: the session carries them to `b`.
          if (apart) await a.store.ingest(lonelyChains(2))
          const run = await one(protocol)
          // The first two rounds warm up (JIT, connections).
          if (i >= 2) runs[name]!.push(run)
        }
      }
      const summary = (list: Array<Awaited<ReturnType<typeof one>>>): Record<string, number> => ({
        bytes: median(list.map((r) => r.bytes)),
        ms: round(median(list.map((r) => r.ms)), 2),
        cpuMs: round(median(list.map((r) => r.cpuMs)), 2),
        heads: median(list.map((r) => r.heads)),
        inSync: list.filter((r) => r.inSync).length
      })
      const digests = summary(runs.digests!)
      const everyHead = summary(runs.everyHead!)
      result[apart ? 'apart' : 'inSync'] = {
        digests,
        everyHead,
        bytesRatio: round(everyHead.bytes! / digests.bytes!, 1),
        cpuRatio: round(everyHead.cpuMs! / digests.cpuMs!, 2),
        meaning: 'medians of the sessions; ratios: 1.0.0 ÷ 1.1.0 (> 1 is the digests ahead)'
      }
    }
    return { chains, sessions, ...result }
  } finally {
    for (const side of sides) {
      await side.libp2p.stop()
      await side.store.close()
    }
    await rm(scratch, { recursive: true, force: true })
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const chains = process.argv.slice(2).map(Number)
  console.log(JSON.stringify(await benchSyncHeads(chains.length > 0 ? { chains } : {}), null, 2))
  process.exit(0)
}
