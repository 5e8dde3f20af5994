import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { isStrictEncoding, verifySignature } from '../crypto/sign.js'
import { isHex } from '../util/hex.js'
import { componentLogger } from '../util/logger.js'
import { signedMessage } from './entry.js'
import { SIGNATURE_DOMAIN } from './constants.js'
import { LedgerClosedError } from './errors.js'

const log = componentLogger('ledger:verify')

/** The three hex strings a signature check needs; a DecodedEntry's `entry` plus `id` fits. */
export interface SignatureCheck {
  author: string
  id: string
  sig: string
}

/** Verifies entry signatures in bulk. Results are in input order. */
export interface BatchVerifier {
  verifyBatch (items: readonly SignatureCheck[]): Promise<boolean[]>
}

export interface VerifyPoolOptions {
  /** Worker threads; default: the machine's available parallelism. */
  size?: number
  /** Let the process exit while workers are idle (for the process-wide shared pool). */
  unref?: boolean
  /** A worker idle this long exits (default IDLE_WORKER_MS); the next batch starts it again. */
  idleMs?: number
}

/** Items are packed as author (32 bytes) ‖ id (32) ‖ sig (64): one transferable buffer per chunk. */
const ITEM_BYTES = 128
/** Below this many items a round trip to a worker costs more than verifying inline. */
const INLINE_BELOW = 4
/** Smallest chunk handed to one worker, so tiny batches are not split into many messages. */
const MIN_CHUNK = 64
/**
 * Workers start on the first batch that needs them and exit after this long
 * without one: each is a V8 isolate of ~13 MB resident, and a node that only
 * hears gossip (one entry at a time, verified inline) never needs them; a
 * catch-up or an audit starts them again within milliseconds.
 */
export const IDLE_WORKER_MS = 30_000

interface Job {
  id: number
  items: ArrayBuffer
  count: number
  resolve: (results: Uint8Array) => void
  reject: (err: Error) => void
}

interface Slot {
  /** Absent until a batch needs it, and again once it has idled IDLE_WORKER_MS. */
  worker?: Worker
  job?: Job
  idle?: ReturnType<typeof setTimeout>
}

/**
 * A pool of worker threads verifying Ed25519 signatures with node:crypto.
 * Native verify runs ~7,000/s per core here, so a node catching up on 100,000
 * entries, or an audit, needs every core: the main thread parses and checks
 * chains while workers verify. Batches are split across idle workers and
 * queued when all are busy. Workers start with the first batch that needs
 * them and exit when idle (IDLE_WORKER_MS), so an idle node holds none.
 */
export class VerifyPool implements BatchVerifier {
  readonly size: number
  private readonly unref: boolean
  private readonly idleMs: number
  private readonly slots: Slot[] = []
  private readonly queue: Job[] = []
  private nextJob = 0
  private closed = false

  private constructor (size: number, unref: boolean, idleMs: number) {
    this.size = size
    this.unref = unref
    this.idleMs = idleMs
    for (let i = 0; i < size; i++) this.slots.push({})
  }

  static create (options: VerifyPoolOptions = {}): VerifyPool {
    const size = Math.max(1, Math.floor(options.size ?? availableParallelism()))
    return new VerifyPool(size, options.unref ?? false, options.idleMs ?? IDLE_WORKER_MS)
  }

  /** Workers running now (they start on demand and exit when idle). */
  get workers (): number {
    return this.slots.filter((slot) => slot.worker !== undefined).length
  }

  async verifyBatch (items: readonly SignatureCheck[]): Promise<boolean[]> {
    if (this.closed) throw new LedgerClosedError('the verify pool is closed; create a new one')
    if (items.length < INLINE_BELOW) return items.map(verifyInline)
    const ok = new Array<boolean>(items.length).fill(false)
    const chunkSize = Math.max(MIN_CHUNK, Math.ceil(items.length / this.size))
    const chunks: Array<Promise<void>> = []
    for (let start = 0; start < items.length; start += chunkSize) {
      const end = Math.min(items.length, start + chunkSize)
      const { buffer, packed } = pack(items, start, end)
      chunks.push(this.submit(buffer, end - start).then((results) => {
        for (let i = start; i < end; i++) ok[i] = packed[i - start] === 1 && results[i - start] === 1
      }))
    }
    await Promise.all(chunks)
    return ok
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const error = new LedgerClosedError('the verify pool was closed while verifying')
    for (const job of this.queue.splice(0)) job.reject(error)
    await Promise.all(this.slots.map(async (slot) => {
      slot.job?.reject(error)
      slot.job = undefined
      clearTimeout(slot.idle)
      const worker = slot.worker
      slot.worker = undefined
      await worker?.terminate()
    }))
  }

  private async submit (items: ArrayBuffer, count: number): Promise<Uint8Array> {
    return await new Promise<Uint8Array>((resolve, reject) => {
      this.queue.push({ id: this.nextJob++, items, count, resolve, reject })
      this.dispatch()
    })
  }

  private dispatch (): void {
    for (const slot of this.slots) {
      if (slot.job !== undefined) continue
      const job = this.queue.shift()
      if (job === undefined) return
      clearTimeout(slot.idle)
      slot.idle = undefined
      slot.job = job
      const worker = slot.worker ?? this.spawn(slot)
      if (this.unref) worker.ref()
      worker.postMessage({ job: job.id, items: job.items, count: job.count }, [job.items])
    }
  }

  private spawn (slot: Slot): Worker {
    const worker = new Worker(workerUrl(), { workerData: { domain: SIGNATURE_DOMAIN } })
    slot.worker = worker
    worker.on('message', ({ job, results }: { job: number, results: Uint8Array }) => {
      const current = slot.job
      if (current === undefined || current.id !== job) return
      slot.job = undefined
      if (this.unref) worker.unref()
      current.resolve(results)
      this.dispatch()
      if (slot.job === undefined) this.retireWhenIdle(slot, worker)
    })
    const replace = (err: Error): void => {
      // Retired (idle) or closed: its exit is expected.
      if (this.closed || slot.worker !== worker) return
      log.error('verify worker failed, replacing it: %s', err.message)
      slot.worker = undefined
      slot.job?.reject(err)
      slot.job = undefined
      this.dispatch()
    }
    worker.on('error', replace)
    worker.on('exit', (code) => { replace(new Error(`verify worker exited with code ${code}`)) })
    // Only after the listeners: adding a 'message' listener refs the worker's port again.
    if (this.unref) worker.unref()
    return worker
  }

  /** Let an idle worker exit after #idleMs without a batch (the next batch starts a new one). */
  private retireWhenIdle (slot: Slot, worker: Worker): void {
    clearTimeout(slot.idle)
    slot.idle = setTimeout(() => {
      slot.idle = undefined
      if (slot.worker !== worker || slot.job !== undefined) return
      slot.worker = undefined
      void worker.terminate()
    }, this.idleMs)
    slot.idle.unref?.()
  }
}

function verifyInline (item: SignatureCheck): boolean {
  if (!isHex(item.id, 32) || !isHex(item.sig, 64)) return false
  return verifySignature(item.author, signedMessage(item.id), Buffer.from(item.sig, 'hex'))
}

/**
 * Pack items [start, end) into one buffer; `packed[i]` is 0 where an item was
 * not 32+32+64 bytes of hex, or fails the strict encoding checks (a
 * non-canonical or small-order key or R, S ≥ L: crypto/strict.ts). Those
 * checks run here, in the calling thread, so the workers only do the curve
 * arithmetic and every path (inline or pooled) refuses the same signatures.
 */
function pack (items: readonly SignatureCheck[], start: number, end: number): { buffer: ArrayBuffer, packed: Uint8Array } {
  const bytes = Buffer.alloc((end - start) * ITEM_BYTES)
  const packed = new Uint8Array(end - start)
  for (let i = start; i < end; i++) {
    const item = items[i]!
    const at = (i - start) * ITEM_BYTES
    if (isHex(item.author, 32) && isHex(item.id, 32) && isHex(item.sig, 64)) {
      bytes.write(item.author, at, 'hex')
      bytes.write(item.id, at + 32, 'hex')
      bytes.write(item.sig, at + 64, 'hex')
      packed[i - start] = isStrictEncoding(bytes.subarray(at, at + 32), bytes.subarray(at + 64, at + 128)) ? 1 : 0
    }
  }
  // Buffer.alloc may hand out a slice of a shared pool: copy into a buffer of our own to transfer it.
  const own = new ArrayBuffer(bytes.byteLength)
  new Uint8Array(own).set(bytes)
  return { buffer: own, packed }
}

let workerPath: URL | undefined

/** Compiled, the worker sits beside this module as .js; under the test runner only the .ts exists. */
function workerUrl (): URL {
  if (workerPath !== undefined) return workerPath
  const compiled = new URL('./verify-worker.js', import.meta.url)
  workerPath = existsSync(fileURLToPath(compiled)) ? compiled : new URL('./verify-worker.ts', import.meta.url)
  return workerPath
}

let shared: VerifyPool | undefined

/**
 * One pool per process, created on first use, whose idle workers do not keep
 * the process alive. Stores and audits use it unless given a pool of their own.
 */
export function sharedVerifyPool (): VerifyPool {
  shared ??= VerifyPool.create({ unref: true })
  return shared
}

/** Verify entries with `verifier`; entries-shaped convenience for callers holding DecodedEntry objects. */
export async function verifyEntries (verifier: BatchVerifier, decoded: ReadonlyArray<{ id: string, entry: { author: string, sig: string } }>): Promise<boolean[]> {
  return await verifier.verifyBatch(decoded.map((d) => ({ author: d.entry.author, id: d.id, sig: d.entry.sig })))
}
