import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { UnsafeArchiveError, unpackTarball } from '../../src/archive/index.js'
import { file, makeTar, symlinkEntry, type RawEntry } from '../archive/hostile-tarballs.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { heapGrowthMb } from './kit.js'
import { fuzzUnpack } from './targets/unpack.js'

describe('fuzzing the tar unpacker', () => {
  it('random, hostile and mutated tarballs: UnsafeArchiveError or a tree inside dest, never a write outside it', async () => {
    let result = { cases: 0, unpacked: 0 }
    const growth = await heapGrowthMb(async () => { result = await fuzzUnpack() })
    console.log(`tar unpacker: ${result.cases} cases (${result.unpacked} unpacked, the rest refused), heap growth ${growth.toFixed(1)} MiB`)
    expect(result.unpacked).toBeGreaterThan(0)
    expect(growth).toBeLessThan(64)
  }, 180_000)
})

describe('tarballs the fuzzer found', () => {
  const cases: Array<[string, RawEntry[]]> = [
    ['a component longer than NAME_MAX', [file(`${'n'.repeat(300)}/a`)]],
    ['a NUL byte in a pax name', [file(`\u0000/${'n'.repeat(300)}/a`)]],
    ['a symlink whose target has a component longer than NAME_MAX', [symlinkEntry('l', `${'n'.repeat(300)}/a`)]]
  ]
  const teardown = useTeardown()
  it.each(cases)('%s: refused as bad-name, saying so (before: a raw ENAMETOOLONG, or "not a valid tarball: Premature close")', async (_what, entries) => {
    const dest = await tempDir(teardown, 'buildhaus-fuzz-found-')
    const refusal = await unpackTarball(await makeTar(entries), join(dest, 'tree'), { maxFiles: 10, maxBytes: 1024 }).then(() => undefined, (err: unknown) => err)
    expect(refusal).toBeInstanceOf(UnsafeArchiveError)
    expect((refusal as UnsafeArchiveError).reason).toBe('bad-name')
    expect((refusal as Error).message).not.toMatch(/premature close/i)
  })
})
