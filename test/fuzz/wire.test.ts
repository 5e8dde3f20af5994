import { describe, expect, it } from 'vitest'
import { heapGrowthMb } from './kit.js'
import { fuzzBlobMessages, fuzzHeartbeats, fuzzSyncFrames } from './targets/wire.js'

describe('fuzzing the wire decoders', () => {
  it.each([
    ['sync frames', fuzzSyncFrames],
    ['blob protocol messages', fuzzBlobMessages],
    ['presence heartbeats', fuzzHeartbeats]
  ])('%s: valid messages round-trip; anything else is refused with the protocol\'s own error', async (what, target) => {
    let cases = 0
    const growth = await heapGrowthMb(() => { cases = target() })
    console.log(`${what}: ${cases} cases, heap growth ${growth.toFixed(1)} MiB`)
    expect(growth).toBeLessThan(64)
  }, 120_000)
})
