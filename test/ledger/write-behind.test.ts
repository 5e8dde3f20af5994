import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { waitFor } from '../../src/util/wait.js'
import { MAX_CHARS_BEHIND, MAX_OPS_BEHIND, WriteBehind, type BatchWriter, type PutOp } from '../../src/ledger/write-behind.js'

/** A real LevelDB, with a record of each batch, and a switch that makes its writes fail as a full disk would. */
async function openDb (teardown: ReturnType<typeof useTeardown>): Promise<{ db: Level<string, string>, writer: BatchWriter, batches: Array<{ keys: string[], sync: boolean }>, disk: { full: boolean, recovered: number } }> {
  const db = new Level<string, string>(await tempDir(teardown), { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  await db.open()
  teardown(async () => { await db.close() })
  const batches: Array<{ keys: string[], sync: boolean }> = []
  const disk = { full: false, recovered: 0 }
  const writer: BatchWriter = {
    batch: async (ops, options) => {
      if (disk.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
      batches.push({ keys: ops.map((op) => op.key), sync: options.sync })
      await db.batch(ops, options)
    },
    recover: async () => {
      disk.recovered++
      await db.close()
      await db.open()
    }
  }
  return { db, writer, batches, disk }
}

const put = (key: string, value = key): PutOp => ({ type: 'put', key, value })

describe('write-behind', () => {
  const teardown = useTeardown()

  it('joins writes queued during a batch into the next one, in order, and a waiting write lands only with everything before it', async () => {
    const { db, writer, batches } = await openDb(teardown)
    const writes = new WriteBehind(writer)
    writes.writeBehind([put('a')])
    // Writes behind start once the turn is over (whatever else it brings joins them).
    await waitFor(() => batches.length === 1, { timeoutMs: 5_000, intervalMs: 1, what: 'the first write behind to start' })
    writes.writeBehind([put('b'), put('c')])
    writes.writeBehind([put('c', 'c2')])
    await writes.write([put('d')], { sync: true })
    // The first batch went alone (nothing was queued yet); the rest waited for it and went together, synced.
    expect(batches).toEqual([{ keys: ['a'], sync: false }, { keys: ['b', 'c', 'c', 'd'], sync: true }])
    expect(await db.getMany(['a', 'b', 'c', 'd'])).toEqual(['a', 'b', 'c2', 'd'])
  })

  it('writes behind made in one turn of the event loop go to LevelDB together, after the turn, and a waiting write starts at once with them ahead of it', async () => {
    const { db, writer, batches } = await openDb(teardown)
    const writes = new WriteBehind(writer)
    writes.writeBehind([put('a')])
    writes.writeBehind([put('b')])
    // Nothing was handed to LevelDB during the turn.
    expect(batches).toEqual([])
    await writes.settled()
    expect(batches).toEqual([{ keys: ['a', 'b'], sync: false }])
    writes.writeBehind([put('c')])
    const waiting = writes.write([put('d')], { sync: true })
    // The waiting write does not wait for the turn to end.
    expect(batches).toHaveLength(2)
    await waiting
    expect(batches).toEqual([{ keys: ['a', 'b'], sync: false }, { keys: ['c', 'd'], sync: true }])
    expect(await db.getMany(['a', 'b', 'c', 'd'])).toEqual(['a', 'b', 'c', 'd'])
  })

  it('an own write made by what the entry set off in the same turn (a plan run by setImmediate: a claim) goes to disk with the entry, in one batch, waiting for no other', async () => {
    const { writer, batches } = await openDb(teardown)
    const writes = new WriteBehind(writer)
    writes.writeBehind([put('job')])
    const claim = new Promise<void>((resolve, reject) => {
      setImmediate(() => { writes.write([put('claim')], { sync: true }).then(resolve, reject) })
    })
    await claim
    expect(batches).toEqual([{ keys: ['job', 'claim'], sync: true }])
  })

  it('settled(): a read after it sees every write made before it', async () => {
    const { db, writer } = await openDb(teardown)
    const writes = new WriteBehind(writer)
    await writes.settled()
    for (let i = 0; i < 50; i++) writes.writeBehind([put(`k${i}`)])
    await writes.settled()
    expect((await db.getMany(Array.from({ length: 50 }, (_, i) => `k${i}`))).every((v) => v !== undefined)).toBe(true)
  })

  it('bounds what waits for the disk, in operations and in characters: roomBehind() waits until it was written', async () => {
    const { writer } = await openDb(teardown)
    const writes = new WriteBehind(writer)
    await writes.roomBehind()
    writes.writeBehind(Array.from({ length: MAX_OPS_BEHIND }, (_, i) => put(`op${i}`)))
    expect(writes.backlog).toBe(MAX_OPS_BEHIND)
    await writes.roomBehind()
    expect(writes.backlog).toBe(0)
    writes.writeBehind([put('big', 'x'.repeat(MAX_CHARS_BEHIND))])
    expect(writes.backlog).toBe(1)
    await writes.roomBehind()
    expect(writes.backlog).toBe(0)
  })

  it('a full disk: writes behind are kept for the next attempt, waiting writes fail with the error, and nothing kept is lost once it can write', async () => {
    const { db, writer, disk } = await openDb(teardown)
    const writes = new WriteBehind(writer)
    disk.full = true
    writes.writeBehind([put('peer-1')])
    const waiting = writes.write([put('own-1')], { sync: true })
    writes.writeBehind([put('peer-2')])
    await expect(waiting).rejects.toMatchObject({ code: 'ENOSPC' })
    expect(writes.failure).toMatchObject({ code: 'ENOSPC' })
    await expect(writes.flush()).rejects.toMatchObject({ code: 'ENOSPC' })
    expect(await db.getMany(['peer-1', 'peer-2', 'own-1'])).toEqual([undefined, undefined, undefined])
    // A read does not try the full disk again (each would reopen the database).
    expect(disk.recovered).toBe(1)
    await writes.settled()
    expect(disk.recovered).toBe(1)

    disk.full = false
    await writes.flush()
    expect(writes.failure).toBeUndefined()
    // Before each write after a failure, the database was reopened (LevelDB's log may hold a torn record).
    expect(disk.recovered).toBe(2)
    await writes.write([put('own-2')], { sync: true })
    expect(disk.recovered).toBe(2)
    // The refused own write is gone (its caller was told); the peers' entries, kept, are written in their order.
    expect(await db.getMany(['peer-1', 'peer-2', 'own-1'])).toEqual(['peer-1', 'peer-2', undefined])
  })
})
