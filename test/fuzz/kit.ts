import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createHash } from 'node:crypto'
import fc from 'fast-check'

/**
 * Shared pieces of the fuzz targets: how many runs (scaled up by the soak
 * run), byte-level mutations of valid inputs, the rule that a decoder may only
 * throw its documented error class, and a loose check of heap growth.
 */

// A failure prints its seed: `FUZZ_SEED=<seed> vitest run test/fuzz/<target>` replays it (and shrinks it again).
const replaySeed = Number.parseInt(process.env.FUZZ_SEED ?? '', 10)
if (Number.isSafeInteger(replaySeed)) fc.configureGlobal({ seed: replaySeed })

/**
 * Bytes that look random but are the same in every run, so that a seed
 * replays the same inputs (random file contents would not).
 */
export function fixedNoise (length: number, label = 'noise'): Buffer {
  const blocks: Buffer[] = []
  for (let i = 0; blocks.length * 32 < length; i++) blocks.push(createHash('sha256').update(`${label}/${i}`).digest())
  return Buffer.concat(blocks).subarray(0, length)
}

/** Every target's run count is multiplied by this; `npm run test:soak` sets FUZZ_SCALE. */
export function runs (base: number, scale = Number(process.env.FUZZ_SCALE ?? 1)): number {
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
}

export type Mutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'set', at: number, byte: number }
  | { kind: 'insert', at: number, bytes: Uint8Array }
  | { kind: 'delete', at: number, length: number }
  | { kind: 'truncate', at: number }
  | { kind: 'duplicate', at: number, length: number }

/** A few mutations of the kinds that make decoders stumble: bit flips, stray bytes, cuts, repeats. */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0, 0x0a, 0x22, 0x2c, 0x5c, 0x7b, 0x7d, 0x80, 0xff, 0x30, 0x2d) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) })
), { minLength: 1, maxLength: 4 })

/** Apply mutations to a copy of `input`; positions wrap around its length. */
export function mutate (input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = Buffer.from(input)
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % bytes.length
    switch (m.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << m.bit)
        break
      case 'set':
        if (bytes.length > 0) bytes[at] = m.byte
        break
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)])
        break
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.length)])
        break
      case 'truncate':
        bytes = bytes.subarray(0, at)
        break
      case 'duplicate':
        bytes = Buffer.concat([bytes.subarray(0, at + m.length), bytes.subarray(at, at + m.length), bytes.subarray(at + m.length)])
        break
    }
  }
  return bytes
}

/**
 * Run `fn`; it may return, or throw an error whose `name` is one of `allowed`.
 * Anything else (a TypeError, a RangeError from deep recursion…) is a bug:
 * rethrown with what was allowed, for fast-check to shrink and report.
 */
export function onlyThrows<T> (allowed: string[], fn: () => T): T | undefined {
  try {
    return fn()
  } catch (err) {
    if (err instanceof Error && allowed.includes(err.name)) return undefined
    throw new Error(`threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}; only ${allowed.join(', ')} is allowed`, { cause: err })
  }
}

export async function onlyRejects<T> (allowed: string[], fn: () => Promise<T>): Promise<{ value?: T, error?: Error }> {
  try {
    return { value: await fn() }
  } catch (err) {
    if (err instanceof Error && allowed.includes(err.name)) return { error: err }
    throw new Error(`rejected with ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}; only ${allowed.join(', ')} is allowed`, { cause: err })
  }
}

setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

/** Heap in use after a full collection, in MiB. */
export function settledHeapMb (): number {
  collectGarbage()
  collectGarbage()
  return process.memoryUsage().heapUsed / 1024 / 1024
}

/**
 * Run a fuzz target and return how much the heap grew across it (after full
 * collections): a decoder that keeps what it saw, or leaks per input, shows
 * up here as growth proportional to the runs.
 */
export async function heapGrowthMb (target: () => unknown): Promise<number> {
  const before = settledHeapMb()
  await target()
  return settledHeapMb() - before
}

/** Hex strings of an exact length. */
export function hexArb (length: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length })
}
