import { describe, expect, it } from 'vitest'
import { PACKED_ITEM_BYTES, VerifyPool } from '../../src/ledger/verify-pool.js'
import { waitFor } from '../../src/util/wait.js'
import { makeChain, newSigner } from './helpers.js'

describe('verify pool', () => {
  it('verifies a large batch across workers, in input order, catching every bad item', async () => {
    const pool = VerifyPool.create({ size: 2 })
    try {
      const entries = [...makeChain(newSigner(), 600), ...makeChain(newSigner(), 600)]
      const items = entries.map((d) => ({ author: d.entry.author, id: d.id, sig: d.entry.sig }))
      const bad = new Set([0, 7, 599, 600, 1199])
      for (const i of bad) {
        const item = items[i]!
        items[i] = i % 2 === 0
          ? { ...item, sig: (item.sig[0] === '0' ? '1' : '0') + item.sig.slice(1) }
          : { ...item, author: items[(i + 700) % items.length]!.author === item.author ? 'ab'.repeat(32) : items[(i + 700) % items.length]!.author }
      }
      items.push({ author: 'not hex', id: items[1]!.id, sig: items[1]!.sig })
      const ok = await pool.verifyBatch(items)
      expect(ok).toHaveLength(items.length)
      expect(ok.flatMap((v, i) => v ? [] : [i])).toEqual([...bad, items.length - 1].sort((a, b) => a - b))
      // Small batches take the inline path and agree.
      expect(await pool.verifyBatch(items.slice(0, 3))).toEqual([false, true, true])
    } finally {
      await pool.close()
    }
    await expect(pool.verifyBatch([])).rejects.toMatchObject({ name: 'LedgerClosedError' })
  })

  it('verifies packed bytes (hex the caller proved) with the same results and the same strict checks as hex items', async () => {
    const pool = VerifyPool.create({ size: 2 })
    try {
      const entries = [...makeChain(newSigner(), 300), ...makeChain(newSigner(), 300)]
      const items = entries.map((d) => ({ author: d.entry.author, id: d.id, sig: d.entry.sig }))
      // A bad signature, an entry under another author's key, and S ≥ L (the group order's bytes as S: never strict).
      items[5] = { ...items[5]!, sig: (items[5]!.sig[0] === '0' ? '1' : '0') + items[5]!.sig.slice(1) }
      items[400] = { ...items[400]!, author: items[0]!.author }
      items[450] = { ...items[450]!, sig: items[450]!.sig.slice(0, 64) + 'edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010' }
      const bytes = Buffer.alloc(items.length * PACKED_ITEM_BYTES + 7)
      items.forEach((item, i) => {
        bytes.write(item.author, i * PACKED_ITEM_BYTES, 'hex')
        bytes.write(item.id, i * PACKED_ITEM_BYTES + 32, 'hex')
        bytes.write(item.sig, i * PACKED_ITEM_BYTES + 64, 'hex')
      })
      const expected = await pool.verifyBatch(items)
      expect(expected.flatMap((v, i) => v ? [] : [i])).toEqual([5, 400, 450])
      expect(await pool.verifyPacked(bytes, items.length)).toEqual(expected)
      // A few items take the inline path and agree.
      expect(await pool.verifyPacked(bytes.subarray(4 * PACKED_ITEM_BYTES), 3)).toEqual([true, false, true])
      expect(await pool.verifyPacked(bytes, 0)).toEqual([])
      await expect(pool.verifyPacked(bytes.subarray(0, 100), 1)).rejects.toThrow(RangeError)
    } finally {
      await pool.close()
    }
    await expect(pool.verifyPacked(new Uint8Array(0), 0)).rejects.toMatchObject({ name: 'LedgerClosedError' })
  })

  it('starts workers only for batches that need them and lets idle ones exit, starting them again for the next batch', async () => {
    const pool = VerifyPool.create({ size: 2, idleMs: 100 })
    try {
      const items = makeChain(newSigner(), 300).map((d) => ({ author: d.entry.author, id: d.id, sig: d.entry.sig }))
      expect(pool.workers).toBe(0)
      expect(await pool.verifyBatch(items.slice(0, 3))).toEqual([true, true, true])
      expect(pool.workers).toBe(0)
      expect((await pool.verifyBatch(items)).every((ok) => ok)).toBe(true)
      expect(pool.workers).toBeGreaterThan(0)
      await waitFor(() => pool.workers === 0, { timeoutMs: 10_000, intervalMs: 20, what: 'the idle workers to exit' })
      expect((await pool.verifyBatch(items)).every((ok) => ok)).toBe(true)
    } finally {
      await pool.close()
    }
    expect(pool.workers).toBe(0)
  })
})
