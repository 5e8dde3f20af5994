/**
 * Ledger benchmark: durable append rate, sync catch-up of a fresh node over
 * loopback, and audit of an export — each beside a baseline measured in the
 * same run on the same machine, with the ratio.
 *
 *   npm run build && node dist/bench/ledger.js [entries]
 */
import { randomBytes, verify as nativeVerify } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { Level } from 'level'
import { generateNodeKey, publicKeyObject } from '../src/crypto/keys.js'
import { libp2pPrivateKey } from '../src/crypto/peer-id.js'
import { createSigner, type Signer } from '../src/crypto/sign.js'
import { createMeshLibp2p, type MeshLibp2p } from '../src/gossip/libp2p.js'
import { auditLines } from '../src/ledger/audit.js'
import { EntryCodec, signedMessage, type DecodedEntry } from '../src/ledger/entry.js'
import { LedgerStore } from '../src/ledger/store.js'
import { ledgerSync, type LedgerSync } from '../src/ledger/sync/index.js'
import { VerifyPool } from '../src/ledger/verify-pool.js'
import { waitFor } from '../src/util/wait.js'
import { median, round } from './stats.js'

export interface LedgerBenchOptions {
  /** Entries for the catch-up and audit runs (default 100,000). */
  entries?: number
  /** Authors the entries are spread over (default 10). */
  authors?: number
  /** Appends timed one at a time, each awaited, over three rounds (default 600). */
  appends?: number
  /** Appends issued concurrently, written by group commit (default 5,000). */
  concurrentAppends?: number
}

interface Figure {
  value: number
  unit: string
  baseline: number
  baselineUnit: string
  baselineWhat: string
  ratio: number
  goal?: string
}

const codec = new EntryCodec({
  note: {
    validate (body) {
      if (typeof (body as { text?: unknown }).text !== 'string') throw new Error('text must be a string')
    }
  }
})

export async function benchLedger (options: LedgerBenchOptions = {}): Promise<Record<string, unknown>> {
  const entries = options.entries ?? 100_000
  const authors = options.authors ?? 10
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-ledger-'))
  const pool = VerifyPool.create()
  try {
    const append = await benchAppend(scratch, options.appends ?? 600, options.concurrentAppends ?? 5_000)
    const corpus = makeCorpus(entries, authors)
    // Each baseline is measured right before the figure it is compared with.
    const catchUp = await benchCatchUp(scratch, corpus, pool, rawVerifyRate(corpus))
    const audit = await benchAudit(corpus, pool, rawVerifyRate(corpus))
    return {
      // Other processes compete for the cores: the load average says how much (figures are noisy above ~1).
      machine: { cores: availableParallelism(), node: process.version, verifyWorkers: pool.size, loadAverage1m: Math.round(loadavg()[0]! * 100) / 100 },
      entries,
      authors,
      appendSequential: append.sequential,
      appendConcurrent: append.concurrent,
      syncCatchUp: catchUp,
      audit
    }
  } finally {
    await pool.close()
    await rm(scratch, { recursive: true, force: true })
  }
}

/**
 * Durable appends vs. raw LevelDB synchronous puts of lines of the same size:
 * the fsync ceiling. Measured in alternating rounds (median of each), since
 * other processes' disk and CPU load comes and goes.
 */
async function benchAppend (scratch: string, sequential: number, concurrent: number): Promise<{ sequential: Figure, concurrent: Figure }> {
  const rounds = 3
  const perRound = Math.max(1, Math.round(sequential / rounds))
  const raw = new Level<string, string>(join(scratch, 'raw'), { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  await raw.open()
  const store = await LedgerStore.open({ path: join(scratch, 'append'), codec, signer: createSigner(generateNodeKey()) })
  store.allowAppend()
  const sample = codec.create(createSigner(generateNodeKey()), { seq: 0, prev: null, clock: 0, time: Date.now(), type: 'note', body: { text: 'entry 000' } }).line
  const rawRates: number[] = []
  const appendRates: number[] = []
  let n = 0
  for (let round = 0; round < rounds; round++) {
    let start = performance.now()
    for (let i = 0; i < perRound; i++) await raw.put(`k${n++}`, sample, { sync: true })
    rawRates.push(perRound / ((performance.now() - start) / 1000))
    start = performance.now()
    for (let i = 0; i < perRound; i++) await store.append('note', { text: `entry ${i}` })
    appendRates.push(perRound / ((performance.now() - start) / 1000))
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrent }, async (_, i) => await store.append('note', { text: `entry ${i}` })))
  const concurrentRate = concurrent / ((performance.now() - start) / 1000)
  await store.close()
  await raw.close()
  const rawRate = median(rawRates)
  const sequentialRate = median(appendRates)
  const baseline = { baseline: round(rawRate, 0), baselineUnit: 'puts/s', baselineWhat: 'LevelDB put with sync:true (one fsync each), same line size, same run, alternating rounds (median)' }
  return {
    sequential: { value: round(sequentialRate, 0), unit: 'entries/s (each awaited, durable)', ...baseline, ratio: ratio(sequentialRate, rawRate) },
    concurrent: { value: round(concurrentRate, 0), unit: 'entries/s (concurrent, durable, group commit)', ...baseline, ratio: ratio(concurrentRate, rawRate) }
  }
}

function makeCorpus (count: number, authors: number): DecodedEntry[][] {
  const signers: Signer[] = Array.from({ length: authors }, () => createSigner(generateNodeKey()))
  const chains: DecodedEntry[][] = signers.map(() => [])
  const text = randomBytes(48).toString('hex')
  for (let i = 0; i < count; i++) {
    const a = i % authors
    const chain = chains[a]!
    const prev = chain.at(-1)
    chain.push(codec.create(signers[a]!, { seq: chain.length, prev: prev?.id ?? null, clock: i, time: 1_767_225_600_000 + i, type: 'note', body: { text: `${text} ${i}` } }))
  }
  return chains
}

/** Single-thread node:crypto verify of the corpus's signatures, key objects cached: the per-core ceiling. */
export function rawVerifyRate (corpus: DecodedEntry[][]): number {
  const all = corpus.flat()
  const sample = all.slice(0, Math.min(all.length, 20_000))
  const keys = new Map<string, ReturnType<typeof publicKeyObject>>()
  const prepared = sample.map((d) => {
    let key = keys.get(d.entry.author)
    if (key === undefined) keys.set(d.entry.author, key = publicKeyObject(d.entry.author))
    return { key, message: signedMessage(d.id), sig: Buffer.from(d.entry.sig, 'hex') }
  })
  const start = performance.now()
  let ok = 0
  for (const p of prepared) if (nativeVerify(null, p.message, p.key, p.sig)) ok++
  const seconds = (performance.now() - start) / 1000
  if (ok !== prepared.length) throw new Error('raw verify failed on a valid corpus')
  return prepared.length / seconds
}

/**
 * The same raw verify loop in one plain worker thread per core, all at once:
 * what the machine can verify right now with every core (other load included).
 */
export async function rawVerifyAllCores (corpus: DecodedEntry[][], threads: number): Promise<number> {
  const all = corpus.flat()
  const sample = all.slice(0, Math.min(all.length, 40_000))
  const share = Math.ceil(sample.length / threads)
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { createPublicKey, verify } = require('node:crypto')
    const prefix = Buffer.from('302a300506032b6570032100', 'hex')
    const keys = new Map()
    const items = workerData.items.map(([author, message, sig]) => {
      let key = keys.get(author)
      if (key === undefined) keys.set(author, key = createPublicKey({ key: Buffer.concat([prefix, Buffer.from(author, 'hex')]), format: 'der', type: 'spki' }))
      return [key, Buffer.from(message, 'hex'), Buffer.from(sig, 'hex')]
    })
    parentPort.once('message', () => {
      let ok = 0
      for (const [key, message, sig] of items) if (verify(null, message, key, sig)) ok++
      parentPort.postMessage(ok)
    })
    parentPort.postMessage('ready')`
  const workers = Array.from({ length: threads }, (_, t) => new Worker(code, {
    eval: true,
    workerData: { items: sample.slice(t * share, (t + 1) * share).map((d) => [d.entry.author, Buffer.from(signedMessage(d.id)).toString('hex'), d.entry.sig]) }
  }))
  try {
    await Promise.all(workers.map(async (w) => await new Promise((resolve) => w.once('message', resolve))))
    const start = performance.now()
    const ok = await Promise.all(workers.map(async (w) => await new Promise<number>((resolve) => { w.once('message', resolve); w.postMessage('go') })))
    const seconds = (performance.now() - start) / 1000
    if (ok.reduce((a, b) => a + b, 0) !== sample.length) throw new Error('raw verify failed on a valid corpus')
    return sample.length / seconds
  } finally {
    await Promise.all(workers.map(async (w) => await w.terminate()))
  }
}

async function benchCatchUp (scratch: string, corpus: DecodedEntry[][], pool: VerifyPool, rawVerify: number): Promise<Figure & { seconds: number }> {
  const total = corpus.reduce((n, chain) => n + chain.length, 0)
  const source = await LedgerStore.open({ path: join(scratch, 'source'), codec, verifier: pool })
  for (const chain of corpus) {
    for (let i = 0; i < chain.length; i += 2048) await source.ingest(chain.slice(i, i + 2048), { verified: true })
  }
  const fresh = await LedgerStore.open({ path: join(scratch, 'fresh'), codec, verifier: pool })
  const nodes: Array<{ libp2p: MeshLibp2p, sync: LedgerSync }> = []
  try {
    for (const store of [source, fresh]) {
      const libp2p = await createMeshLibp2p({ privateKey: await libp2pPrivateKey(generateNodeKey()), listen: ['/ip4/127.0.0.1/tcp/0'] })
      const sync = ledgerSync({ network: libp2p, store }, { intervalMs: 60_000 })
      await sync.start()
      nodes.push({ libp2p, sync })
    }
    const start = performance.now()
    await nodes[1]!.libp2p.dial(nodes[0]!.libp2p.getMultiaddrs()[0]!)
    await waitFor(() => fresh.count() === total, { timeoutMs: 600_000, intervalMs: 20, what: `the fresh node to hold ${total} entries` })
    const seconds = (performance.now() - start) / 1000
    const rate = total / seconds
    return {
      value: round(rate, 0),
      unit: 'entries/s (fresh node, loopback, verified, durable)',
      baseline: round(rawVerify, 0),
      baselineUnit: 'verifies/s',
      baselineWhat: 'raw node:crypto Ed25519 verify on one core, same signatures, same run',
      ratio: ratio(rate, rawVerify),
      goal: '>= 5,000 entries/s',
      seconds: Math.round(seconds * 100) / 100
    }
  } finally {
    for (const node of nodes) {
      await node.sync.stop()
      await node.libp2p.stop()
    }
    await source.close()
    await fresh.close()
  }
}

async function benchAudit (corpus: DecodedEntry[][], pool: VerifyPool, rawVerify: number): Promise<Figure & { perCoreRatio: number, workers: number, rawAllCores: number, ratioVsRawAllCores: number }> {
  const lines = corpus.flatMap((chain) => chain.map((d) => d.line))
  const cores = Math.min(pool.size, availableParallelism())
  const rawAllCores = await rawVerifyAllCores(corpus, cores)
  const start = performance.now()
  const report = await auditLines(lines, codec, { verifier: pool })
  const seconds = (performance.now() - start) / 1000
  if (!report.valid) throw new Error('the audit of a valid export found problems')
  const rate = lines.length / seconds
  return {
    value: round(rate, 0),
    unit: 'lines/s (parse, canonical check, signature, chain)',
    baseline: round(rawVerify, 0),
    baselineUnit: 'verifies/s',
    baselineWhat: 'raw node:crypto Ed25519 verify on one core, same signatures, same run',
    ratio: ratio(rate, rawVerify),
    perCoreRatio: ratio(rate, rawVerify * cores),
    rawAllCores: round(rawAllCores, 0),
    ratioVsRawAllCores: ratio(rate, rawAllCores),
    workers: pool.size,
    goal: 'perCoreRatio >= 0.8 (ratioVsRawAllCores is the same measure against a parallel raw loop run just before, which also sees other load on the machine)'
  }
}

function ratio (a: number, b: number): number {
  return Math.round((a / b) * 1000) / 1000
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const entries = process.argv[2] !== undefined ? Number(process.argv[2]) : undefined
  benchLedger(entries !== undefined ? { entries } : {}).then((figures) => {
    console.log(JSON.stringify(figures, null, 2))
    process.exit(0)
  }, (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
