import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DISK_POLL_MS, DISK_WALK_MAX_GAP_MS, DiskPace, type FileSystemUse } from '../../src/sandbox/disk-pace.js'

/** A file system whose use the test sets by hand. */
function fakeUse (): { use: FileSystemUse, set: (bytes: number, inodes?: number) => void, fail: () => void } {
  let state: { bytes: number, inodes: number | undefined } | undefined = { bytes: 1_000_000, inodes: 500 }
  return {
    use: async () => state,
    set: (bytes, inodes) => { state = { bytes, inodes } },
    fail: () => { state = undefined }
  }
}

const LIMITS = { maxBytes: 16 * 1024 * 1024, maxEntries: 10_000 }
let dir: string

beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'buildhaus-disk-pace-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

async function walkedOnce (pace: DiskPace, usage: { bytes: number, entries: number }, walkMs: number, at: number): Promise<void> {
  await pace.walkStarting()
  pace.walked(usage, walkMs, at)
}

describe('the pace of a running step\'s workspace walks', () => {
  it('walks at the first look, then every poll while walks are cheap', async () => {
    const fs = fakeUse()
    const pace = new DiskPace([dir], LIMITS, fs.use)
    expect(await pace.due(0)).toBe(true)
    await walkedOnce(pace, { bytes: 1000, entries: 3 }, 1, 0)
    expect(pace.gap).toBe(DISK_POLL_MS)
    expect(await pace.due(DISK_POLL_MS - 1)).toBe(false)
    expect(await pace.due(DISK_POLL_MS)).toBe(true)
  })

  it('spaces walks by their cost, up to a bound', async () => {
    const fs = fakeUse()
    const pace = new DiskPace([dir], LIMITS, fs.use)
    await walkedOnce(pace, { bytes: 1000, entries: 3 }, 20, 0)
    expect(pace.gap).toBe(1000)
    expect(await pace.due(999)).toBe(false)
    expect(await pace.due(1000)).toBe(true)
    await walkedOnce(pace, { bytes: 1000, entries: 3 }, 900, 2000)
    expect(pace.gap).toBe(DISK_WALK_MAX_GAP_MS)
  })

  it('walks at once when the file system grew enough for the workspace to be past its limit', async () => {
    const fs = fakeUse()
    const pace = new DiskPace([dir], LIMITS, fs.use)
    await walkedOnce(pace, { bytes: 10 * 1024 * 1024, entries: 3 }, 100, 0)
    fs.set(1_000_000 + 5 * 1024 * 1024, 500)
    expect(await pace.due(10)).toBe(false)
    fs.set(1_000_000 + 7 * 1024 * 1024, 500)
    expect(await pace.due(10)).toBe(true)
  })

  it('walks at once when the file system\'s inodes grew past the entry bound', async () => {
    const fs = fakeUse()
    const pace = new DiskPace([dir], LIMITS, fs.use)
    await walkedOnce(pace, { bytes: 1000, entries: 9_000 }, 100, 0)
    fs.set(1_000_000, 500 + 999)
    expect(await pace.due(10)).toBe(false)
    fs.set(1_000_000, 500 + 1_001)
    expect(await pace.due(10)).toBe(true)
  })

  it('measures growth from when the last walk began, so what the job wrote during the walk counts', async () => {
    const fs = fakeUse()
    const pace = new DiskPace([dir], LIMITS, fs.use)
    await pace.walkStarting()
    // Written while the walk ran, after it had passed that part of the tree: the walk did not count it.
    fs.set(1_000_000 + 8 * 1024 * 1024, 500)
    pace.walked({ bytes: 9 * 1024 * 1024, entries: 3 }, 100, 0)
    expect(await pace.due(10)).toBe(true)
  })

  it('walks when the file system cannot say what it holds', async () => {
    const fs = fakeUse()
    const pace = new DiskPace([dir], LIMITS, fs.use)
    await walkedOnce(pace, { bytes: 1000, entries: 3 }, 100, 0)
    fs.fail()
    expect(await pace.due(10)).toBe(true)
  })

  it('counts a file system shared by several of the workspace\'s directories once', async () => {
    let calls = 0
    const use: FileSystemUse = async () => { calls++; return { bytes: 0, inodes: 0 } }
    const pace = new DiskPace([dir, join(dir, '.'), tmpdir()], LIMITS, use)
    await pace.walkStarting()
    expect(calls).toBe(1)
  })

  it('reads a real file system with statfs', async () => {
    // Bounds no other test's writes to the same file system could pass meanwhile.
    const pace = new DiskPace([dir], { maxBytes: 2 ** 50, maxEntries: 2 ** 40 })
    await walkedOnce(pace, { bytes: 0, entries: 0 }, 1, 0)
    expect(await pace.due(1)).toBe(false)
  })
})
