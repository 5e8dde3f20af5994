/**
 * The door's cost: what gossip validation with quotas costs per entry (parse,
 * canonical form, body rules, clock and chain checks, the relay, author and
 * strangers' buckets, strict Ed25519 verify) beside the raw node:crypto
 * verify of the same signatures, in the same run, on one core; and what
 * refusing an entry over quota costs (no signature is checked for it).
 *
 *   npm run build && node dist/bench/door.js [entries]
 */
import { verify as nativeVerify } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { TopicValidatorResult, type Message, type TopicValidatorFn } from '@libp2p/gossipsub'
import { generateNodeKey, publicKeyObject } from '../src/crypto/keys.js'
import { peerIdOfAuthor } from '../src/crypto/peer-id.js'
import { createSigner, verifySignature } from '../src/crypto/sign.js'
import { jobEntryRules } from '../src/jobs/index.js'
import { Admission, type Quota } from '../src/ledger/admission/index.js'
import { EntryCodec, signedMessage, type DecodedEntry } from '../src/ledger/entry.js'
import { ENTRIES_TOPIC, entryGossip, type GossipPubSub } from '../src/ledger/gossip/index.js'
import { LedgerStore } from '../src/ledger/store.js'
import { median, round } from './stats.js'

export interface DoorBenchOptions {
  /** Entries validated per round (default 4,000): results of ~800 bytes, each by a fresh key, as a flood of strangers would be. */
  entries?: number
  /** Alternating rounds; the median of each is reported (default 3). */
  rounds?: number
}

const codec = new EntryCodec(jobEntryRules)
const UNLIMITED: Quota = { entries: 1e12, entriesPerSecond: 1e12, bytes: 1e15, bytesPerSecond: 1e15 }
const NOTHING: Quota = { entries: 0, entriesPerSecond: 1e-9, bytes: 0, bytesPerSecond: 1e-9 }

/** A pubsub that only holds validators: the bench calls the entries topic's validator directly. */
function validatorHarness (): { pubsub: GossipPubSub, validator: () => TopicValidatorFn } {
  const topicValidators = new Map<string, TopicValidatorFn>()
  const pubsub: GossipPubSub = {
    topicValidators,
    subscribe: () => {},
    unsubscribe: () => {},
    publish: async () => {},
    addEventListener: () => {},
    removeEventListener: () => {}
  }
  return { pubsub, validator: () => topicValidators.get(ENTRIES_TOPIC)! }
}

function corpus (count: number): DecodedEntry[] {
  const job = 'a'.repeat(64)
  const out: DecodedEntry[] = []
  for (let i = 0; i < count; i++) {
    const signer = createSigner(generateNodeKey())
    out.push(codec.create(signer, {
      seq: 0,
      prev: null,
      clock: Date.now(),
      time: Date.now(),
      type: 'result',
      body: {
        job,
        platform: 'linux-x64',
        status: 'pass',
        steps: [{ name: 'build', exit: 0, ms: 1200 }, { name: 'test', exit: 0, ms: 800 }],
        log: 'b'.repeat(64),
        logSize: 2048,
        artifacts: [{ path: 'dist/app.tar.gz', sha256: 'c'.repeat(64), size: 10_000 }, { path: 'dist/app.whl', sha256: 'd'.repeat(64), size: 9_000 }],
        env: { os: 'Debian GNU/Linux 12', kernel: '6.1.0', arch: 'x64', sandbox: 'bubblewrap 0.8.0', tools: { node: '22.23.3', gcc: '12.2.0' } },
        start: Date.now() - 2000,
        end: Date.now()
      }
    }))
  }
  return out
}

export async function benchDoor (options: DoorBenchOptions = {}): Promise<Record<string, unknown>> {
  const count = options.entries ?? 4_000
  const rounds = options.rounds ?? 3
  const scratch = await mkdtemp(join(tmpdir(), 'buildhaus-bench-door-'))
  const entries = corpus(count)
  const messages = entries.map((e) => ({ data: new TextEncoder().encode(e.line), topic: ENTRIES_TOPIC }) as unknown as Message)
  const relay = peerIdOfAuthor(createSigner(generateNodeKey()).publicHex)
  const keys = new Map(entries.map((e) => [e.entry.author, publicKeyObject(e.entry.author)]))
  const raw = entries.map((e) => ({ key: keys.get(e.entry.author)!, message: signedMessage(e.id), sig: Buffer.from(e.entry.sig, 'hex') }))
  const store = await LedgerStore.open({ path: join(scratch, 'ledger'), codec })
  const rates = { raw: [] as number[], strict: [] as number[], validate: [] as number[], refuse: [] as number[] }
  try {
    for (let round = 0; round < rounds; round++) {
      let start = performance.now()
      let ok = 0
      for (const r of raw) if (nativeVerify(null, r.message, r.key, r.sig)) ok++
      rates.raw.push(count / ((performance.now() - start) / 1000))
      if (ok !== count) throw new Error('raw verify failed on a valid corpus')

      start = performance.now()
      for (const e of entries) if (!verifySignature(e.entry.author, signedMessage(e.id), Buffer.from(e.entry.sig, 'hex'))) throw new Error('strict verify failed on a valid corpus')
      rates.strict.push(count / ((performance.now() - start) / 1000))

      // Every entry taken: quotas that never run out, so all the work is done for each.
      rates.validate.push(validateAll(store, messages, relay, new Admission({ quotas: { stranger: UNLIMITED, allStrangers: UNLIMITED, relay: UNLIMITED } }), TopicValidatorResult.Accept))
      // Every entry over all strangers' quota: refused before its signature is checked.
      rates.refuse.push(validateAll(store, messages, relay, new Admission({ quotas: { stranger: UNLIMITED, allStrangers: NOTHING, relay: UNLIMITED } }), TopicValidatorResult.Ignore))
    }
  } finally {
    await store.close()
    await rm(scratch, { recursive: true, force: true })
  }
  const rawRate = median(rates.raw)
  const perEntry = (rate: number): number => round(1e6 / rate, 1)
  const figure = (rate: number, what: string): Record<string, unknown> => ({
    value: perEntry(rate),
    unit: `µs per entry (${what})`,
    baseline: perEntry(rawRate),
    baselineUnit: 'µs per verify',
    baselineWhat: 'raw node:crypto Ed25519 verify of the same signatures, one core, same run, alternating rounds (median)',
    ratio: round(rawRate / rate, 3)
  })
  return {
    machine: { node: process.version, loadAverage1m: round(loadavg()[0]!, 2) },
    entries: count,
    entryBytes: Math.round(entries.reduce((n, e) => n + e.line.length, 0) / count),
    strictVerify: figure(median(rates.strict), 'strict verify: the encoding and order checks, then node:crypto'),
    gossipValidation: figure(median(rates.validate), 'gossip validation with quotas, entry taken: decode, body rules, clock, buckets, strict verify'),
    quotaRefusal: figure(median(rates.refuse), 'gossip validation of an entry over all strangers\' quota: refused before any signature check')
  }
}

/** Run the entries topic's validator over every message, as gossipsub would; entries/s. */
function validateAll (store: LedgerStore, messages: Message[], relay: ReturnType<typeof peerIdOfAuthor>, admission: Admission, expected: TopicValidatorResult): number {
  const { pubsub, validator } = validatorHarness()
  const gossip = entryGossip({ pubsub, store, admission })
  gossip.start()
  try {
    const validate = validator()
    const start = performance.now()
    for (const message of messages) {
      if (validate(relay, message) !== expected) throw new Error(`the validator did not ${expected} an entry of the corpus`)
    }
    return messages.length / ((performance.now() - start) / 1000)
  } finally {
    gossip.stop()
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const entries = process.argv[2] !== undefined ? Number(process.argv[2]) : undefined
  benchDoor(entries !== undefined ? { entries } : {}).then((figures) => {
    console.log(JSON.stringify(figures, null, 2))
    process.exit(0)
  }, (err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
