import { describe, expect, it } from 'vitest'
import { VerifyPool } from '../../src/ledger/verify-pool.js'
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
