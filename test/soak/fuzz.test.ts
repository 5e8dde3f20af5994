import { describe, expect, it } from 'vitest'
import { heapGrowthMb, runs } from '../fuzz/kit.js'
import { fuzzEntryDecoder } from '../fuzz/targets/entry.js'
import { fuzzJobSpec } from '../fuzz/targets/spec.js'
import { fuzzUnpack } from '../fuzz/targets/unpack.js'
import { fuzzBlobMessages, fuzzHeartbeats, fuzzSyncFrames } from '../fuzz/targets/wire.js'

/** The fuzz targets of `npm test`, FUZZ_SCALE times longer (default 25: several minutes, a few hundred thousand cases). */
const SCALE = Number(process.env.FUZZ_SCALE ?? 25)

describe(`fuzzing, ${SCALE}× the runs of npm test`, () => {
  it.each([
    ['entry decoder', (s: number) => fuzzEntryDecoder(s)],
    ['sync frames', (s: number) => fuzzSyncFrames(s)],
    ['blob protocol messages', (s: number) => fuzzBlobMessages(s)],
    ['presence heartbeats', (s: number) => fuzzHeartbeats(s)],
    ['job spec', (s: number) => fuzzJobSpec(s)],
    ['tar unpacker', async (s: number) => (await fuzzUnpack(s)).cases]
  ] as Array<[string, (scale: number) => number | Promise<number>]>)('%s', async (what, target) => {
    let cases = 0
    const growth = await heapGrowthMb(async () => { cases = await target(SCALE) })
    console.log(`${what}: ${cases} cases (scale ${SCALE}, e.g. ${runs(1000, SCALE)} runs where npm test does 1000), heap growth ${growth.toFixed(1)} MiB`)
    expect(growth).toBeLessThan(128)
  }, 30 * 60_000)
})
