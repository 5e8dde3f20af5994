import { describe, expect, it } from 'vitest'
import { heapGrowthMb } from './kit.js'
import { fuzzEntryDecoder } from './targets/entry.js'

describe('fuzzing the entry decoder', () => {
  it('refuses arbitrary, mutated and edited entry lines with InvalidEntryError only, and never takes a changed line for the original', async () => {
    let cases = 0
    const growth = await heapGrowthMb(() => { cases = fuzzEntryDecoder() })
    console.log(`entry decoder: ${cases} cases, heap growth ${growth.toFixed(1)} MiB`)
    expect(growth).toBeLessThan(64)
  }, 120_000)
})
