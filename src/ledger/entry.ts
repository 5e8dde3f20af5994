import { createHash } from 'node:crypto'
import { z } from 'zod'
import { canonicalJson } from '../util/canonical-json.js'
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
 * What the ledger needs to know of each entry type a higher layer defines:
 * how to check a body, and which other entries (by id) it refers to, so the
 * store can index them. The ledger itself knows no job semantics.
 */
export interface EntryTypeRule {
  /** Throw an Error whose message says what is wrong with the body. */
  validate (body: unknown): void
  /** Ids of entries this body refers to (e.g. the job a result belongs to). */
  refs?: (body: EntryBody) => string[]
}

export type EntryTypeRules = Readonly<Record<string, EntryTypeRule>>

const hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits')
const hex64 = z.string().regex(/^[0-9a-f]{128}$/, 'expected 128 lower-case hex digits')
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

const envelopeSchema = z.strictObject({
  v: z.literal(ENTRY_FORMAT_VERSION),
  author: hex32,
  seq: counter,
  prev: hex32.nullable(),
  clock: counter,
  time: counter,
  type: z.string().regex(ENTRY_TYPE_PATTERN, 'expected a lower-case word'),
  body: z.record(z.string(), z.unknown()),
  sig: hex64
}).refine((e) => (e.seq === 0) === (e.prev === null), { message: 'prev must be null exactly when seq is 0', path: ['prev'] })

const SIG_MEMBER_LENGTH = ',"sig":""'.length + 128
const domainBytes = Buffer.from(SIGNATURE_DOMAIN, 'ascii')

/** The message an entry's signature covers: the domain prefix, then the raw id. */
export function signedMessage (id: string): Uint8Array {
  return Buffer.concat([domainBytes, fromHex(id)])
}

export function entryIdOf (unsignedCanonical: string): string {
  return createHash('sha256').update(unsignedCanonical, 'utf8').digest('hex')
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
    const result = envelopeSchema.safeParse(parsed)
    if (!result.success) {
      const issue = result.error.issues[0]
      const where = issue?.path.length ? issue.path.join('.') : 'entry'
      throw new InvalidEntryError('bad-shape', `${where}: ${issue?.message ?? 'invalid'}`)
    }
    const entry = result.data as Entry
    let canonical: string
    try {
      canonical = canonicalJson(entry)
    } catch (err) {
      throw new InvalidEntryError('bad-shape', (err as Error).message)
    }
    if (canonical !== line) throw new InvalidEntryError('not-canonical', 'entry is not in canonical form (RFC 8785 JSON, keys sorted, no whitespace)')
    this.checkBody(entry.type, entry.body)
    const id = entryIdOf(unsignedOf(canonical))
    const decoded: DecodedEntry = { entry, id, line: canonical }
    if (options.verify !== false && !verifyEntrySignature(decoded)) {
      throw new InvalidEntryError('bad-signature', `signature of entry ${id} does not verify against author ${entry.author}`)
    }
    return decoded
  }

  private checkBody (type: string, body: unknown): void {
    const rule = Object.hasOwn(this.rules, type) ? this.rules[type] : undefined
    if (rule === undefined) throw new InvalidEntryError('unknown-type', `unknown entry type "${type}"`)
    checkPortableJson(body)
    try {
      rule.validate(body)
    } catch (err) {
      throw new InvalidEntryError('bad-body', `${type} body: ${(err as Error).message}`)
    }
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
