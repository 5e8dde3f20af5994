import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { LedgerStore } from '../../src/ledger/store.js'
import type { DecodedEntry } from '../../src/ledger/entry.js'
import type { ForkProof } from '../../src/ledger/forks.js'
import { collect, makeChain, newSigner, openTestStore, testCodec } from './helpers.js'

describe('ledger store', () => {
  const teardown = useTeardown()

  it('appends a chain: seq from 0, prev links, a rising hybrid logical clock, and reads it back every way', async () => {
    let now = 1_767_225_600_000
    const store = await openTestStore(teardown, { now: () => now })
    const a = await store.append('note', { text: 'first' })
    const b = await store.append('note', { text: 'second', about: a.id })
    // Within one millisecond the clock still rises; then it follows the wall clock again.
    expect(a.entry).toMatchObject({ seq: 0, prev: null, clock: now, time: now, author: store.author })
    expect(b.entry).toMatchObject({ seq: 1, prev: a.id, clock: now + 1, time: now })
    expect(testCodec.decode(b.line).id).toBe(b.id)
    expect((await store.get(b.id))?.line).toBe(b.line)
    expect((await store.getBySeq(store.author!, 0))?.id).toBe(a.id)
    expect(await store.heads()).toEqual(new Map([[store.author!, { seq: 1, id: b.id }]]))
    expect((await collect(store.entriesAfter(store.author!, 0))).map((e) => e.id)).toEqual([b.id])
    expect((await collect(store.byType('note'))).map((e) => e.id)).toEqual([a.id, b.id])
    expect((await collect(store.byRef(a.id))).map((e) => e.id)).toEqual([b.id])
    expect(store.count()).toBe(2)
    now += 5_000
    expect((await store.append('note', { text: 'third' })).entry.clock).toBe(now)
  })

  it('refuses to append before allowAppend(), saying what to do', async () => {
    const store = await openTestStore(teardown, { allowAppend: false })
    await expect(store.append('note', { text: 'x' })).rejects.toMatchObject({ name: 'AppendNotAllowedError' })
    store.allowAppend()
    await expect(store.append('note', { text: 'x' })).resolves.toBeDefined()
  })

  it('writes concurrent appends in call order with consecutive seqs', async () => {
    const store = await openTestStore(teardown)
    const made = await Promise.all(Array.from({ length: 300 }, async (_, i) => await store.append('note', { text: `n${i}` })))
    expect(made.map((e) => e.entry.seq)).toEqual(made.map((_, i) => i))
    expect(made.map((e) => e.entry.body.text)).toEqual(made.map((_, i) => `n${i}`))
    for (let i = 1; i < made.length; i++) expect(made[i]!.entry.prev).toBe(made[i - 1]!.id)
  })

  it('a bad body rejects only its own append', async () => {
    const store = await openTestStore(teardown)
    const results = await Promise.allSettled([
      store.append('note', { text: 'ok' }), store.append('note', { text: 5 }), store.append('note', { text: 'ok too' })
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(store.count()).toBe(2)
  })

  it('ingests out of order: parks entries until predecessors arrive, stores them in chain order, fires events after', async () => {
    const store = await openTestStore(teardown)
    const chain = makeChain(newSigner(), 20)
    const seen: number[] = []
    store.addEventListener('entry', (evt) => { seen.push(evt.detail.entry.seq) })
    const first = await store.ingest(chain.slice(10).map((e) => e.line))
    expect(first).toMatchObject({ pending: 10, accepted: [] })
    expect(store.stats().pending).toBe(10)
    const second = await store.ingest(chain.slice(0, 10).reverse().map((e) => e.line))
    expect(second.accepted.map((e) => e.entry.seq)).toEqual(chain.map((_, i) => i))
    expect(seen).toEqual(chain.map((_, i) => i))
    expect(store.stats().pending).toBe(0)
    expect((await store.ingest([chain[3]!.line])).duplicates).toBe(1)
  })

  it('entries ingested as already verified (gossip) that are held or parked count as duplicates, stored once', async () => {
    const store = await openTestStore(teardown)
    const chain = makeChain(newSigner(), 6)
    const decoded = chain.map((e) => testCodec.decode(e.line))
    await store.ingest(decoded.slice(0, 3), { verified: true })
    expect((await store.ingest(decoded.slice(4, 5), { verified: true })).pending).toBe(1)
    const again = await store.ingest([decoded[1]!, decoded[2]!, decoded[4]!], { verified: true })
    expect(again).toMatchObject({ accepted: [], duplicates: 3, pending: 0, rejected: [], forks: [] })
    const rest = await store.ingest([decoded[3]!, decoded[5]!], { verified: true })
    expect(rest.accepted.map((e) => e.entry.seq)).toEqual([3, 4, 5])
    expect(await collect(store.exportLines())).toEqual(chain.map((e) => e.line))
    expect(store.count()).toBe(6)
  })

  it('rejects bad entries with a reason and keeps the good ones of the same batch', async () => {
    const store = await openTestStore(teardown)
    const signer = newSigner()
    const chain = makeChain(signer, 3)
    const tampered = chain[1]!.line.replace('note 1', 'note X')
    const otherPrev = makeChain(signer, 1, { from: 1, prev: 'f'.repeat(64), text: 'other' })[0]!
    const report = await store.ingest([chain[0]!.line, tampered, '{', otherPrev.line])
    expect(report.accepted.map((e) => e.id)).toEqual([chain[0]!.id])
    const byIndex = [...report.rejected].sort((x, y) => x.index - y.index)
    expect(byIndex.map((r) => [r.index, r.reason])).toEqual([[1, 'bad-signature'], [2, 'not-json'], [3, 'prev-mismatch']])
  })

  it('bounds the pending buffer, dropping the oldest', async () => {
    const store = await openTestStore(teardown, { pendingLimit: 5 })
    const chain = makeChain(newSigner(), 30)
    await store.ingest(chain.slice(1).map((e) => e.line))
    expect(store.stats().pending).toBe(5)
    const report = await store.ingest([chain[0]!.line])
    expect(report.accepted.map((e) => e.entry.seq)).toEqual([0])
  })

  it('detects a fork: stores both, fires fork, refuses the author afterwards, keeps it across reopen', async () => {
    const path = join(await tempDir(teardown), 'ledger')
    const store = await LedgerStore.open({ path, codec: testCodec })
    const evil = newSigner()
    const chain = makeChain(evil, 5)
    const other = makeChain(evil, 1, { from: 3, prev: chain[2]!.id, text: 'other' })[0]!
    const forks: ForkProof[] = []
    store.addEventListener('fork', (evt) => { forks.push(evt.detail) })
    await store.ingest(chain.map((e) => e.line))
    const report = await store.ingest([other.line])
    expect(report.forks).toHaveLength(1)
    expect(forks.map((f) => [f.author, f.seq, f.entries[0].id, f.entries[1].id])).toEqual([[evil.publicHex, 3, chain[3]!.id, other.id]])
    expect(store.isEquivocating(evil.publicHex)).toBe(true)
    expect((await store.get(other.id))?.line).toBe(other.line)
    const more = makeChain(evil, 1, { from: 5, prev: chain[4]!.id })
    expect((await store.ingest(more.map((e) => e.line))).rejected[0]?.reason).toBe('equivocating')
    const lines = await collect(store.exportLines())
    expect(lines).toEqual([...chain.map((e) => e.line), other.line])
    await store.close()
    const reopened = await LedgerStore.open({ path, codec: testCodec })
    teardown(async () => { await reopened.close() })
    expect(reopened.isEquivocating(evil.publicHex)).toBe(true)
    expect((await reopened.forks()).map((f) => f.entries.map((e: DecodedEntry) => e.id))).toEqual([[chain[3]!.id, other.id]])
  })
})

describe('ledger store lifecycle', () => {
  const teardown = useTeardown()

  it('a second open of the same ledger says another process holds it; closed stores refuse work', async () => {
    const store = await openTestStore(teardown)
    await expect(LedgerStore.open({ path: store.path, codec: testCodec })).rejects.toMatchObject({ name: 'EnvironmentError', message: expect.stringMatching(/in use by another process/) })
    const other = await openTestStore(teardown)
    await other.close()
    await expect(other.append('note', { text: 'x' })).rejects.toMatchObject({ name: 'LedgerClosedError' })
    await expect(other.ingest([])).rejects.toMatchObject({ name: 'LedgerClosedError' })
  })

  it('close() lets queued appends finish first', async () => {
    const store = await openTestStore(teardown)
    const pending = Array.from({ length: 50 }, async (_, i) => await store.append('note', { text: `${i}` }))
    await store.close()
    expect((await Promise.all(pending)).map((e) => e.entry.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i))
  })

  it('without a key the store can ingest but not append', async () => {
    const path = join(await tempDir(teardown), 'ledger')
    const store = await LedgerStore.open({ path, codec: testCodec })
    teardown(async () => { await store.close() })
    await expect(store.append('note', { text: 'x' })).rejects.toMatchObject({ name: 'ReadOnlyLedgerError' })
    expect((await store.ingest(makeChain(newSigner(), 3).map((e) => e.line))).accepted).toHaveLength(3)
  })
})
