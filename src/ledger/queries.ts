import type { Level } from 'level'
import { isHex } from '../util/hex.js'
import { decodeTrusted, type DecodedEntry } from './entry.js'
import type { ForkProof } from './forks.js'
import { decodeHead, idOfIndexKey, keys, parseForkKey, type Range, type StoredHead } from './store-keys.js'

export interface ChainHead {
  seq: number
  id: string
}

/** Entries fetched per LevelDB round trip when reading index ranges. */
const READ_CHUNK = 256

/**
 * The read side of the ledger's LevelDB: lookups, chain ranges and the
 * indexes, from disk once the writes made before the read have been
 * attempted (peers' entries are written behind: LedgerStore, WriteBehind). Kept apart from LedgerStore, which owns the
 * writes and the in-memory state (heads cache, counters) these never need.
 */
export class LedgerQueries {
  private readonly db: Level<string, string>
  /** Waits until the writes made so far were attempted: a read then sees them. */
  private readonly settled: () => Promise<void>

  constructor (db: Level<string, string>, settled: () => Promise<void> = async () => {}) {
    this.db = db
    this.settled = settled
  }

  async get (id: string): Promise<DecodedEntry | undefined> {
    if (!isHex(id, 32)) return undefined
    await this.settled()
    const at = await this.db.get(keys.id(id))
    if (at === undefined) return undefined
    const line = await this.db.get(at)
    return line === undefined ? undefined : decodeTrusted(line, id)
  }

  async has (id: string): Promise<boolean> {
    if (!isHex(id, 32)) return false
    await this.settled()
    return await this.db.has(keys.id(id))
  }

  async getBySeq (author: string, seq: number): Promise<DecodedEntry | undefined> {
    if (!isHex(author, 32) || !Number.isSafeInteger(seq) || seq < 0) return undefined
    await this.settled()
    const line = await this.db.get(keys.chain(author, seq))
    return line === undefined ? undefined : decodeTrusted(line)
  }

  /** Head (last seq and its id) of every chain held, read from LevelDB (one entry per author: mind the size). */
  async heads (): Promise<Map<string, ChainHead>> {
    const all = new Map<string, ChainHead>()
    for await (const [author, head] of this.allHeads()) all.set(author, { seq: head.seq, id: head.id })
    return all
  }

  /** Every chain's head, streamed from LevelDB in author order. */
  async * allHeads (): AsyncGenerator<[string, StoredHead]> {
    await this.settled()
    for await (const [key, value] of this.db.iterator(keys.allHeads())) yield [key.slice(2), decodeHead(value)]
  }

  /** The heads of the chains whose author's key starts with `hex` (lower-case hex digits), in author order. */
  async * headsStartingWith (hex: string): AsyncGenerator<[string, StoredHead]> {
    await this.settled()
    for await (const [key, value] of this.db.iterator(keys.headsStartingWith(hex))) yield [key.slice(2), decodeHead(value)]
  }

  /** An author's chain entries after `afterSeq` (-1: from the start), in seq order. */
  async * entriesAfter (author: string, afterSeq: number, options: { limit?: number } = {}): AsyncGenerator<DecodedEntry> {
    for await (const line of this.linesAfter(author, afterSeq, options)) yield decodeTrusted(line)
  }

  /** Like entriesAfter, but the stored lines as they are (what sync and export send). */
  async * linesAfter (author: string, afterSeq: number, options: { limit?: number } = {}): AsyncGenerator<string> {
    const range = keys.chainOf(author)
    const from = afterSeq < 0 ? { gte: range.gte } : { gt: keys.chain(author, afterSeq) }
    await this.settled()
    yield * this.db.values({ ...from, lt: range.lt, limit: options.limit ?? -1 })
  }

  /** Entries of one type, in clock order (ties by id); `reverse`: newest first. */
  async * byType (type: string, options: { reverse?: boolean } = {}): AsyncGenerator<DecodedEntry> {
    yield * this.indexed(keys.typeRange(type), options.reverse === true)
  }

  /** Entries whose body refers to `id` (per the type rules' refs), in Lamport clock order. */
  async * byRef (id: string): AsyncGenerator<DecodedEntry> {
    if (!isHex(id, 32)) return
    yield * this.indexed(keys.refRange(id))
  }

  private async * indexed (range: Range, reverse = false): AsyncGenerator<DecodedEntry> {
    await this.settled()
    let ids: string[] = []
    const flush = async function * (this: LedgerQueries): AsyncGenerator<DecodedEntry> {
      const locations = await this.db.getMany(ids.map(keys.id))
      const lines = await this.db.getMany(locations.filter((at): at is string => at !== undefined))
      let i = 0
      for (const at of locations) {
        if (at === undefined) continue
        const line = lines[i++]
        if (line !== undefined) yield decodeTrusted(line)
      }
      ids = []
    }
    for await (const key of this.db.keys({ ...range, reverse })) {
      ids.push(idOfIndexKey(key))
      if (ids.length >= READ_CHUNK) yield * flush.call(this)
    }
    if (ids.length > 0) yield * flush.call(this)
  }

  /** Every fork proof held: for each (author, seq), the chain's entry (if held) paired with each conflicting one. */
  async forks (): Promise<ForkProof[]> {
    const bySeat = new Map<string, DecodedEntry[]>()
    await this.settled()
    for await (const [key, line] of this.db.iterator(keys.allForks())) {
      const { author, seq, id } = parseForkKey(key)
      const seat = `${author}!${seq}`
      const list = bySeat.get(seat) ?? []
      list.push(decodeTrusted(line, id))
      bySeat.set(seat, list)
    }
    const proofs: ForkProof[] = []
    for (const evidence of bySeat.values()) {
      const { author, seq } = evidence[0]!.entry
      const onChain = await this.getBySeq(author, seq)
      const [first, ...rest] = onChain !== undefined ? [onChain, ...evidence] : evidence
      for (const other of rest) proofs.push({ author, seq, entries: [first!, other] })
    }
    return proofs
  }
}
