// Worker thread of the verify pool. It imports only node built-ins, so it
// runs both compiled (dist/) and as TypeScript under Node 22's type stripping
// (tests); the protocol is described in verify-pool.ts. The strict encoding
// checks (small-order and non-canonical keys and R, S ≥ L) are made by the
// pool before items reach a worker: a worker only does the curve arithmetic.
import { createPublicKey, verify, type KeyObject } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'

interface VerifyJob {
  job: number
  items: ArrayBuffer
  count: number
}

const ITEM_BYTES = 128
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const KEY_CACHE_LIMIT = 4096

const domain = Buffer.from((workerData as { domain: string }).domain, 'ascii')
const message = Buffer.alloc(domain.length + 32)
domain.copy(message)
const keys = new Map<string, KeyObject>()

/** The last key used, by its bytes: consecutive items are often one author's (exports list chains whole). */
const lastRaw = Buffer.alloc(32)
let lastKey: KeyObject | undefined

function keyFor (raw: Buffer): KeyObject {
  if (lastKey !== undefined && raw.equals(lastRaw)) return lastKey
  const key = cachedKey(raw)
  raw.copy(lastRaw)
  lastKey = key
  return key
}

function cachedKey (raw: Buffer): KeyObject {
  const name = raw.toString('base64')
  let key = keys.get(name)
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' })
    if (keys.size >= KEY_CACHE_LIMIT) keys.delete(keys.keys().next().value!)
    keys.set(name, key)
  }
  return key
}

parentPort!.on('message', ({ job, items, count }: VerifyJob) => {
  const bytes = Buffer.from(items)
  const results = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const at = i * ITEM_BYTES
    try {
      bytes.copy(message, domain.length, at + 32, at + 64)
      results[i] = verify(null, message, keyFor(bytes.subarray(at, at + 32)), bytes.subarray(at + 64, at + 128)) ? 1 : 0
    } catch {
      results[i] = 0
    }
  }
  parentPort!.postMessage({ job, results }, [results.buffer])
})
