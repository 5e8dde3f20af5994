import { execFileSync } from 'node:child_process'
import { mkdir, open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import { collect, makeChain, newSigner, openTestStore } from './helpers.js'

/** A small tmpfs of our own (root only): a disk that really fills up. */
function mountSmallDisk (dir: string, megabytes: number): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a tmpfs'
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir], { stdio: 'pipe' })
    return undefined
  } catch (err) {
    return `mount -t tmpfs failed: ${String((err as { stderr?: unknown }).stderr ?? err).trim()}`
  }
}

/** Fill the file system holding `dir` until it refuses another byte; returns the filler's path. */
async function fill (dir: string): Promise<string> {
  const path = join(dir, 'filler')
  const file = await open(path, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  try {
    for (;;) await file.write(chunk)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOSPC') throw err
  }
  // Small writes may still fit in the last partial block: take those too.
  try {
    for (;;) await file.write(Buffer.alloc(512, 1))
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOSPC') throw err
  } finally {
    await file.close()
  }
  return path
}

describe('ledger on a full disk', () => {
  const teardown = useTeardown()

  it('entries from peers are visible at once and on disk after close; reads right after an ingest find them', async () => {
    const home = await tempDir(teardown, 'buildhaus-ledger-')
    const path = join(home, 'ledger')
    const chain = makeChain(newSigner(), 30)
    const store = await openTestStore(teardown, { path })
    const seen: DecodedEntry[] = []
    store.addEventListener('entry', (evt) => { seen.push(evt.detail) })
    for (const entry of chain) await store.ingest([entry], { verified: true })
    expect(seen.map((e) => e.id)).toEqual(chain.map((e) => e.id))
    // Written behind, read at once: the reads wait for the writes made before them.
    expect((await store.get(chain[29]!.id))?.line).toBe(chain[29]!.line)
    expect(await collect(store.linesAfter(chain[0]!.entry.author, -1))).toHaveLength(30)
    await store.close()
    const again = await openTestStore(teardown, { path })
    expect(again.count()).toBe(30)
    expect((await again.getBySeq(chain[0]!.entry.author, 29))?.id).toBe(chain[29]!.id)
  })

  it('a full disk refuses peers\' entries with a clear error, loses none already taken, and takes them again once there is room', async (ctx) => {
    const dir = await tempDir(teardown, 'buildhaus-fulldisk-')
    const skipped = mountSmallDisk(dir, 8)
    if (skipped !== undefined) {
      console.log(`skipping the full-disk ledger test: ${skipped}`)
      ctx.skip()
      return
    }
    teardown(() => { execFileSync('umount', ['-l', dir]) })
    const path = join(dir, 'ledger')
    await mkdir(path)
    const store = await openTestStore(teardown, { path })
    const chain = makeChain(newSigner(), 400, { text: 'x'.repeat(2_000) })
    // Room for the start of the chain.
    await store.ingest(chain.slice(0, 10), { verified: true })
    const filler = await fill(dir)

    // The disk is full: the first ingest still returns (its write is behind), the write fails, and from then on
    // peers' entries are refused with an error that says why, until a write succeeds.
    let refused: unknown
    for (let i = 10; i < chain.length && refused === undefined; i++) {
      try {
        await store.ingest([chain[i]!], { verified: true })
      } catch (err) {
        refused = err
      }
      // As gossip delivers them: one event at a time, the disk's answers in between.
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(refused).toMatchObject({ name: 'LedgerWriteError' })
    expect(String((refused as Error).message)).toMatch(/cannot write to the ledger .*is the disk full\?/)
    const taken = store.count()
    expect(taken).toBeGreaterThan(10)
    expect(taken).toBeLessThan(chain.length)
    // An own entry cannot be made durable either: append fails, and says so.
    await expect(store.append('note', { text: 'mine' })).rejects.toThrow()

    await rm(filler)
    // Room again. An own append tries at once (peers' entries wait a second between tries): LevelDB is reopened
    // past the record the full disk tore, the entries taken before the refusal are written, then the append.
    const mine = await store.append('note', { text: 'mine' })
    const report = await store.ingest(chain.slice(taken), { verified: true })
    expect(report.accepted).toHaveLength(chain.length - taken)
    await store.close()
    // Nothing taken is lost, on disk: the whole chain and the own entry are there after a restart.
    const again = await openTestStore(teardown, { path, signer: undefined })
    expect(again.count()).toBe(chain.length + 1)
    expect((await collect(again.linesAfter(chain[0]!.entry.author, -1))).length).toBe(chain.length)
    expect((await again.get(mine.id))?.line).toBe(mine.line)
  })
})
