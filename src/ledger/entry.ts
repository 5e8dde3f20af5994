import { hash } from 'node:crypto'
import { canonicalJson } from '../util/canonical-json.js'
import { canonicalJsonOfParsed } from '../util/canonical-json-parsed.js'
import { isCanonicalJsonText } from '../util/canonical-json-text.js'
import { fromHex, toHex } from '../util/hex.js'
import { verifySignature, type Signer } from '../crypto/sign.js'
import { ENTRY_FORMAT_VERSION, ENTRY_TYPE_PATTERN, MAX_BODY_DEPTH, MAX_ENTRY_BYTES, SIGNATURE_DOMAIN } from './constants.js'
import { InvalidEntryError } from './errors.js'

export type EntryBody = Record<string, unknown>

/** The signed fields of an entry; its canonical JSON is what the id hashes. */
export interface UnsignedEntry<B extends EntryBody = EntryBody> {
  v: typeof ENTRY_FORMAT_VERSION
  author: string
  seq: number
  prev: string | null
  clock: number
  time: number
  type: string
  body: B
}

export interface Entry<B extends EntryBody = EntryBody> extends UnsignedEntry<B> {
  sig: string
}

/** An entry with what every consumer needs beside it, computed once. */
export interface DecodedEntry<B extends EntryBody = EntryBody> {
  readonly entry: Entry<B>
  /** sha256 (hex) of the canonical JSON of the entry without `sig`. */
  readonly id: string
  /** Canonical JSON of the whole signed entry: the form on the wire and in exports. */
  readonly line: string
}

/**
 * What a fold (jobs, membership) reads of a checked entry: not its
 * signature, prev link or line. An audit keeps every entry of a log until
 * its folds, so it keeps only this much (node/cli/audit.ts).
 */
export interface CheckedEntry {
  readonly entry: Pick<Entry, 'author' | 'seq' | 'clock' | 'time' | 'type' | 'body'>
  readonly id: string
}

/**
 * What the ledger needs to know of each entry type a higher layer defines:
 * how to check a body, and which other entries (by id) it refers to, so the
 * store can index them. The ledger itself knows no job semantics.
 */
export interface EntryTypeRule {
  /** Throw an Error whose message says what is wrong with the body. */
  validate (body: unknown): void
  /** Ids of entries this body refers to (e.g. the job a result belongs to). */
  refs?: (body: EntryBody) => string[]
  /**
   * An entry of this type ends its author's chain (e.g. `revoke`: the author
   * retires its key): no entry after it is stored, and audit reports any.
   */
  final?: boolean
}

export type EntryTypeRules = Readonly<Record<string, EntryTypeRule>>

const HEX32 = /^[0-9a-f]{64}$/
const HEX64 = /^[0-9a-f]{128}$/
const ENVELOPE_MEMBERS = new Set(['author', 'body', 'clock', 'prev', 'seq', 'sig', 'time', 'type', 'v'])

/**
 * Check the envelope of a parsed entry (the body is the type rule's). Written
 * out by hand rather than with a schema library: it runs for every entry
 * received, and this is several times faster.
 */
function checkEnvelope (value: unknown): asserts value is Entry {
  const shape = (where: string, what: string): never => { throw new InvalidEntryError('bad-shape', `${where}: ${what}`) }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return shape('entry', 'expected an object')
  const members = Object.keys(value)
  for (const name of members) if (!ENVELOPE_MEMBERS.has(name)) shape('entry', `unexpected member "${name}"`)
  if (members.length !== ENVELOPE_MEMBERS.size) {
    for (const name of ENVELOPE_MEMBERS) if (!Object.hasOwn(value, name)) shape(name, 'missing')
  }
  const e = value as Record<string, unknown>
  if (e.v !== ENTRY_FORMAT_VERSION) shape('v', `expected ${ENTRY_FORMAT_VERSION}`)
  if (typeof e.author !== 'string' || !HEX32.test(e.author)) shape('author', 'expected 64 lower-case hex digits')
  for (const name of ['seq', 'clock', 'time'] as const) {
    if (!Number.isSafeInteger(e[name]) || (e[name] as number) < 0) shape(name, 'expected an integer from 0 to 2^53-1')
  }
  if (e.prev !== null && (typeof e.prev !== 'string' || !HEX32.test(e.prev))) shape('prev', 'expected null or 64 lower-case hex digits')
  if ((e.seq === 0) !== (e.prev === null)) shape('prev', 'prev must be null exactly when seq is 0')
  if (typeof e.type !== 'string' || !ENTRY_TYPE_PATTERN.test(e.type)) shape('type', 'expected a lower-case word')
  if (typeof e.body !== 'object' || e.body === null || Array.isArray(e.body)) shape('body', 'expected an object')
  if (typeof e.sig !== 'string' || !HEX64.test(e.sig)) shape('sig', 'expected 128 lower-case hex digits')
}

/** Canonical JSON of a parsed entry; also enforces integers only, well-formed strings and the depth limit. */
function serialiseParsed (entry: Entry): string {
  try {
    return canonicalJsonOfParsed(entry, MAX_BODY_DEPTH + 1)
  } catch (err) {
    throw new InvalidEntryError('bad-shape', `body: ${(err as Error).message}`)
  }
}

const SIG_MEMBER_LENGTH = ',"sig":""'.length + 128
const domainBytes = Buffer.from(SIGNATURE_DOMAIN, 'ascii')

/** The message an entry's signature covers: the domain prefix, then the raw id. */
export function signedMessage (id: string): Uint8Array {
  return Buffer.concat([domainBytes, fromHex(id)])
}

export function entryIdOf (unsignedCanonical: string): string {
  // One-shot: no Hash object per entry (this runs for every entry read).
  return hash('sha256', unsignedCanonical, 'hex')
}

/**
 * The entry codec: builds, signs, parses and checks entries. One instance per
 * set of type rules; it holds no other state.
 */
export class EntryCodec {
  readonly rules: EntryTypeRules

  constructor (rules: EntryTypeRules) {
    this.rules = rules
  }

  /** Build and sign a new entry. The caller supplies the chain position (seq, prev, clock). */
  create<B extends EntryBody> (signer: Signer, fields: Omit<UnsignedEntry<B>, 'v' | 'author'>): DecodedEntry<B> {
    const unsigned: UnsignedEntry<B> = { v: ENTRY_FORMAT_VERSION, author: signer.publicHex, ...fields }
    this.checkBody(unsigned.type, unsigned.body)
    const id = entryIdOf(canonicalJson(unsigned))
    const sig = toHex(signer.sign(signedMessage(id)))
    const entry: Entry<B> = { ...unsigned, sig }
    const line = canonicalJson(entry)
    if (Buffer.byteLength(line) > MAX_ENTRY_BYTES) {
      throw new InvalidEntryError('too-large', `the entry would be ${Buffer.byteLength(line)} bytes, the limit is ${MAX_ENTRY_BYTES}`)
    }
    return { entry, id, line }
  }

  /**
   * Parse and fully check one entry line: size, canonical form, envelope shape,
   * known type, body, and (unless `verify` is false, for callers that verify
   * signatures in bulk elsewhere) the signature. Throws InvalidEntryError.
   */
  decode (input: string | Uint8Array, options: { verify?: boolean } = {}): DecodedEntry {
    const line = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8')
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
    if (size > MAX_ENTRY_BYTES) throw new InvalidEntryError('too-large', `entry is ${size} bytes, the limit is ${MAX_ENTRY_BYTES}`)
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      throw new InvalidEntryError('not-json', 'entry is not valid JSON')
    }
    checkEnvelope(parsed)
    const entry = parsed
    // The text check is sure for almost every line and builds no string; when it is not, the
    // serialiser decides (and names what is wrong).
    const canonical = isCanonicalJsonText(line, MAX_BODY_DEPTH + 1) ? line : serialiseParsed(entry)
    if (canonical !== line) throw new InvalidEntryError('not-canonical', 'entry is not in canonical form (RFC 8785 JSON, keys sorted, no whitespace)')
    this.checkRule(entry.type, entry.body)
    const id = entryIdOf(unsignedOf(canonical))
    const decoded: DecodedEntry = { entry, id, line: canonical }
    if (options.verify !== false && !verifyEntrySignature(decoded)) {
      throw new InvalidEntryError('bad-signature', `signature of entry ${id} does not verify against author ${entry.author}`)
    }
    return decoded
  }

  private checkBody (type: string, body: unknown): void {
    this.checkRule(type, body)
    checkPortableJson(body)
  }

  private checkRule (type: string, body: unknown): void {
    const rule = Object.hasOwn(this.rules, type) ? this.rules[type] : undefined
    if (rule === undefined) throw new InvalidEntryError('unknown-type', `unknown entry type "${type}"`)
    try {
      rule.validate(body)
    } catch (err) {
      throw new InvalidEntryError('bad-body', `${type} body: ${(err as Error).message}`)
    }
  }

  /** Whether an entry of `type` ends its author's chain (EntryTypeRule.final). */
  isFinal (type: string): boolean {
    return Object.hasOwn(this.rules, type) && this.rules[type]!.final === true
  }

  /** Ids this entry refers to, per its type's rule. */
  refsOf (entry: Entry): string[] {
    const rule = Object.hasOwn(this.rules, entry.type) ? this.rules[entry.type] : undefined
    return rule?.refs?.(entry.body) ?? []
  }
}

/**
 * What an independent verifier in any language can read back exactly: nesting
 * at most MAX_BODY_DEPTH deep, and strings (values and member names) that are
 * well-formed Unicode. RFC 8785 leaves lone surrogates undefined, so they are
 * refused rather than serialised one way here and another way elsewhere.
 */
function checkPortableJson (body: unknown): void {
  const stack: Array<{ value: unknown, depth: number }> = [{ value: body, depth: 1 }]
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!
    if (typeof value === 'string') {
      if (!isWellFormed(value)) throw new InvalidEntryError('bad-shape', 'body contains a string with a lone surrogate (not well-formed Unicode)')
      continue
    }
    if (value === null || typeof value !== 'object') continue
    if (depth > MAX_BODY_DEPTH) throw new InvalidEntryError('bad-shape', `body is nested deeper than ${MAX_BODY_DEPTH} levels`)
    if (Array.isArray(value)) {
      for (const item of value) stack.push({ value: item, depth: depth + 1 })
    } else {
      for (const [key, item] of Object.entries(value)) {
        if (!isWellFormed(key)) throw new InvalidEntryError('bad-shape', 'body has a member name with a lone surrogate (not well-formed Unicode)')
        stack.push({ value: item, depth: depth + 1 })
      }
    }
  }
}

function isWellFormed (text: string): boolean {
  return (text as unknown as { isWellFormed: () => boolean }).isWellFormed()
}

/**
 * Rebuild a DecodedEntry from a line this node stored after checking it in
 * full. Skips every check: never use it on bytes from outside.
 */
export function decodeTrusted (line: string, id?: string): DecodedEntry {
  return { entry: JSON.parse(line) as Entry, id: id ?? entryIdOf(unsignedOf(line)), line }
}

/**
 * The canonical JSON of the entry without `sig`, derived from the signed line.
 * JCS sorts members by name, so removing the `sig` member leaves every other
 * byte in place: no second serialisation is needed.
 */
export function unsignedOf (signedLine: string): string {
  // The last occurrence is the top-level member: only `time`, `type` and `v`
  // follow it, and none of those can contain the sequence (a body can).
  const at = signedLine.lastIndexOf(',"sig":"')
  if (at < 0 || signedLine[at + SIG_MEMBER_LENGTH - 1] !== '"') throw new InvalidEntryError('bad-shape', 'entry has no sig')
  return signedLine.slice(0, at) + signedLine.slice(at + SIG_MEMBER_LENGTH)
}

export function verifyEntrySignature (decoded: DecodedEntry): boolean {
  return verifySignature(decoded.entry.author, signedMessage(decoded.id), fromHex(decoded.entry.sig))
}
