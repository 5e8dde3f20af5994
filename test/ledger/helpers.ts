import { join } from 'node:path'
import { generateNodeKey, type NodeKey } from '../../src/crypto/keys.js'
import { createSigner, type Signer } from '../../src/crypto/sign.js'
import { EntryCodec, type DecodedEntry, type EntryTypeRules } from '../../src/ledger/entry.js'
import { LedgerStore, type LedgerStoreOptions } from '../../src/ledger/store.js'
import { tempDir } from '../helpers/temp-home.js'

type Teardown = (fn: () => unknown) => void

/**
 * The ledger's own tests use a small rule table of their own: `note` (a text,
 * optionally referring to another entry) and `mark` (no refs). The real types
 * belong to the jobs layer.
 */
export const testRules: EntryTypeRules = {
  note: {
    validate (body) {
      const { text, about } = body as { text?: unknown, about?: unknown }
      if (typeof text !== 'string') throw new Error('text must be a string')
      if (about !== undefined && (typeof about !== 'string' || !/^[0-9a-f]{64}$/.test(about))) throw new Error('about must be an entry id')
    },
    refs: (body) => typeof body.about === 'string' ? [body.about] : []
  },
  mark: {
    validate (body) {
      if (typeof (body as { n?: unknown }).n !== 'number') throw new Error('n must be a number')
    }
  }
}

export const testCodec = new EntryCodec(testRules)

export function newSigner (key: NodeKey = generateNodeKey()): Signer {
  return createSigner(key)
}

/** A valid chain of `count` notes by `signer`, built without a store (seq from `from`, linked to `prev`). */
export function makeChain (signer: Signer, count: number, options: { from?: number, prev?: string | null, text?: string, time?: number } = {}): DecodedEntry[] {
  const out: DecodedEntry[] = []
  let prev = options.prev ?? null
  const from = options.from ?? 0
  for (let seq = from; seq < from + count; seq++) {
    const entry = testCodec.create(signer, { seq, prev, clock: seq, time: options.time ?? 1_700_000_000_000 + seq, type: 'note', body: { text: `${options.text ?? 'note'} ${seq}` } })
    out.push(entry)
    prev = entry.id
  }
  return out
}

/** Open a store in a fresh temp dir (or `path`), closed at teardown; appends allowed unless told otherwise. */
export async function openTestStore (teardown: Teardown, options: Partial<LedgerStoreOptions> & { allowAppend?: boolean } = {}): Promise<LedgerStore> {
  const path = options.path ?? join(await tempDir(teardown, 'buildhaus-ledger-'), 'ledger')
  const store = await LedgerStore.open({ codec: testCodec, signer: options.signer ?? newSigner(), ...options, path })
  if (options.allowAppend !== false) store.allowAppend()
  teardown(async () => { await store.close() })
  return store
}

export async function collect<T> (source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of source) out.push(item)
  return out
}
