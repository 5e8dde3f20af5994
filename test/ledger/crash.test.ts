import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { nodeKeyFromSeed } from '../../src/crypto/keys.js'
import { auditLines } from '../../src/ledger/audit.js'
import { EntryCodec } from '../../src/ledger/entry.js'
import { LedgerStore } from '../../src/ledger/store.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { collect } from './helpers.js'

const fixtures = join(__dirname, 'fixtures')
const codec = new EntryCodec({ note: { validate: () => {} } })

/** Run the append loop on `path` until it has printed `atLeast` durable appends, then SIGKILL it. */
async function appendThenKill (path: string, seedHex: string, atLeast: number): Promise<Map<number, string>> {
  const child = spawn(process.execPath, ['--import', join(fixtures, 'ts-resolve.mjs'), join(fixtures, 'append-loop.ts'), path, seedHex], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const printed = new Map<number, string>()
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => { resolve(signal) }))
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'ready') continue
    const [seq, id] = line.split(' ')
    printed.set(Number(seq), id!)
    if (printed.size >= atLeast && child.exitCode === null && !child.killed) child.kill('SIGKILL')
  }
  const signal = await exited
  if (signal !== 'SIGKILL') throw new Error(`the append loop ended by itself (${String(signal)}): ${stderr}`)
  return printed
}

describe('crash safety', () => {
  const teardown = useTeardown()

  it('kill -9 while appending: the store reopens with every entry that was reported durable, chain intact', async () => {
    const path = join(await tempDir(teardown), 'ledger')
    const seed = randomBytes(32).toString('hex')
    const author = nodeKeyFromSeed(Buffer.from(seed, 'hex')).publicHex
    let total = 0
    for (const atLeast of [200, 350, 120]) {
      const printed = await appendThenKill(path, seed, atLeast)
      const store = await LedgerStore.open({ path, codec })
      try {
        for (const [seq, id] of printed) expect((await store.getBySeq(author, seq))?.id, `seq ${seq}`).toBe(id)
        const head = (await store.headOf(author))!
        expect(head.seq + 1).toBe(store.count())
        expect(store.count()).toBeGreaterThanOrEqual(Math.max(...printed.keys()) + 1)
        const report = await auditLines(await collect(store.exportLines()), codec)
        expect(report.problems).toEqual([])
        total = store.count()
      } finally {
        await store.close()
      }
    }
    expect(total).toBeGreaterThanOrEqual(200 + 350 + 120)
  })
})
