import { describe, expect, it } from 'vitest'
import { heapGrowthMb } from './kit.js'
import { fuzzJobSpec } from './targets/spec.js'

describe('fuzzing the job spec validator', () => {
  it('refuses arbitrary and mutated buildhaus.json with JobSpecError only, and every spec it passes makes a job body or says why not', async () => {
    let cases = 0
    const growth = await heapGrowthMb(() => { cases = fuzzJobSpec() })
    console.log(`job spec: ${cases} cases, heap growth ${growth.toFixed(1)} MiB`)
    expect(growth).toBeLessThan(64)
  }, 120_000)
})
