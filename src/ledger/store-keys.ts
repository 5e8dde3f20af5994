/**
 * Key layout of the ledger's LevelDB (utf8 keys and values). One keyspace per
 * prefix letter; `!` separates parts, and every part after the prefix is
 * lower-case hex, digits or an entry type, all of which sort below `~`, so
 * `prefix + '~'` bounds a range.
 *
 *   c!<author>!<seq>              → entry line         the chains, in (author, seq) order
 *   i!<id>                        → key of its line    (a c! or k! key)
 *   k!<author>!<seq>!<id>         → entry line         fork evidence: a valid entry conflicting with the chain
 *   h!<author>                    → <seq> <id> <clock>[ final] head of each chain
 *   t!<type>!<clock>!<id>         → ''                 index by type, in Lamport order
 *   r!<ref id>!<clock>!<id>       → ''                 index by referenced id, in Lamport order
 *   m!format                      → '1'                the layout's version
 *   m!bytes                       → <decimal>          bytes of entry lines held (chains and fork evidence)
 *   m!count, m!authors, m!clock   → <decimal>          chain entries, chains, and the greatest clock held
 *
 * <seq> and <clock> are zero-padded to 16 decimal digits (2^53-1 has 16).
 */
export const STORE_FORMAT = '1'

const RANGE_END = '~'

export function pad16 (n: number): string {
  return n.toString().padStart(16, '0')
}

export const keys = {
  chain: (author: string, seq: number): string => `c!${author}!${pad16(seq)}`,
  chainOf: (author: string): Range => prefixRange(`c!${author}!`),
  allChains: (): Range => prefixRange('c!'),
  id: (id: string): string => `i!${id}`,
  fork: (author: string, seq: number, id: string): string => `k!${author}!${pad16(seq)}!${id}`,
  allForks: (): Range => prefixRange('k!'),
  forksOf: (author: string): Range => prefixRange(`k!${author}!`),
  head: (author: string): string => `h!${author}`,
  allHeads: (): Range => prefixRange('h!'),
  /** The heads of the authors whose key starts with these hex digits (a sync bucket: two). */
  headsStartingWith: (hex: string): Range => prefixRange(`h!${hex}`),
  type: (type: string, clock: number, id: string): string => `t!${type}!${pad16(clock)}!${id}`,
  typeRange: (type: string): Range => prefixRange(`t!${type}!`),
  ref: (ref: string, clock: number, id: string): string => `r!${ref}!${pad16(clock)}!${id}`,
  refRange: (ref: string): Range => prefixRange(`r!${ref}!`),
  meta: (name: 'format' | 'bytes' | 'count' | 'authors' | 'clock'): string => `m!${name}`
}

export interface Range {
  gte: string
  lt: string
}

function prefixRange (prefix: string): Range {
  return { gte: prefix, lt: prefix + RANGE_END }
}

/** `c!<author>!<seq>` → [author, seq]. */
export function parseChainKey (key: string): { author: string, seq: number } {
  return { author: key.slice(2, 66), seq: Number(key.slice(67)) }
}

/** `k!<author>!<seq>!<id>` → parts. */
export function parseForkKey (key: string): { author: string, seq: number, id: string } {
  return { author: key.slice(2, 66), seq: Number(key.slice(67, 83)), id: key.slice(84) }
}

/** Last part of a t! or r! key: the entry id. */
export function idOfIndexKey (key: string): string {
  return key.slice(key.length - 64)
}

export interface StoredHead {
  seq: number
  id: string
  clock: number
  /** The head is a final entry (e.g. a revoke): the chain has ended. */
  final?: boolean
}

/** `<seq> <id> <clock>`, then ` final` when the chain has ended. */
export function encodeHead (head: StoredHead): string {
  return `${head.seq} ${head.id} ${head.clock}${head.final === true ? ' final' : ''}`
}

export function decodeHead (value: string): StoredHead {
  const [seq, id, clock, final] = value.split(' ')
  return { seq: Number(seq), id: id!, clock: Number(clock), ...(final === 'final' ? { final: true } : {}) }
}
