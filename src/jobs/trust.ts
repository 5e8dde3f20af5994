import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parsePublicKey } from '../crypto/keys.js'
import { describeError } from '../util/errors.js'
import { TrustListError, TrustPolicyError } from './errors.js'

/**
 * Whom a reader believes. The same policy drives the node's view and an
 * offline audit, so both reach the same verdicts from the same entries.
 */
export interface TrustPolicy {
  /** Builder keys (hex) whose results count. Absent: everyone's. */
  trusted?: ReadonlySet<string>
  /**
   * Keys whose results never count, whatever `trusted` says: authors caught
   * forking their chain, revoked keys, builders below a reputation threshold
   * (see policyWithReputation).
   */
  excluded?: ReadonlySet<string>
  /** Distinct agreeing builders needed to decide a platform. Default: the platform's replicas. */
  quorum?: number
  /**
   * Where `trusted` comes from, for the words a reader sees: `members` (the
   * mesh's members, from vouches in the log) or `list` (the reader's own trust
   * directory). Absent: a list.
   */
  basis?: 'members' | 'list'
}

/** Whom a policy counts, and what to call the others in a sentence ("not members"). */
export interface Counting {
  counts: (author: string) => boolean
  /** Says why the others do not count: "non-members", "builders not on the trust list". */
  outsiders: string
}

/** The counting a policy implies (the scheduler's and the explanations' view of it). */
export function countingOf (policy: TrustPolicy): Counting {
  return {
    counts: (author) => isTrusted(policy, author),
    outsiders: policy.basis === 'members' ? 'non-members' : 'builders not on the trust list'
  }
}

export function isTrusted (policy: TrustPolicy, builder: string): boolean {
  if (policy.excluded?.has(builder) === true) return false
  return policy.trusted === undefined || policy.trusted.has(builder)
}

/** The quorum for a platform asking for `replicas` results. */
export function quorumFor (policy: TrustPolicy, replicas: number): number {
  return policy.quorum ?? replicas
}

/** Throws TrustPolicyError when the policy cannot be applied. */
export function checkTrustPolicy (policy: TrustPolicy): void {
  if (policy.quorum !== undefined && (!Number.isSafeInteger(policy.quorum) || policy.quorum < 1)) {
    throw new TrustPolicyError(`the quorum must be a whole number of builders, at least 1; got ${policy.quorum}`)
  }
}

/** Public keys read from a trust directory, with the file each came from (a human name for the builder). */
export interface TrustList {
  keys: ReadonlySet<string>
  /** key hex → the file's base name (`alice` for `alice.pub.pem`). */
  names: ReadonlyMap<string, string>
}

const MAX_KEY_FILE_BYTES = 16 * 1024
const KEY_FILE = /^(.+?)\.pub(?:\.pem)?$/

/**
 * Read a directory holding one public key per file: `NAME.pub.pem` (SPKI PEM)
 * or `NAME.pub` (64 hex digits, optionally followed by a comment). Dotfiles
 * and `*.md` are skipped; any other file is an error, so a misnamed key is
 * never silently left out. An empty list is an error too: trusting nobody
 * would leave every job pending.
 */
export async function loadTrustDir (dir: string): Promise<TrustList> {
  let names: string[]
  try {
    names = (await readdir(dir)).sort()
  } catch (err) {
    throw new TrustListError(`cannot read the trust directory ${dir}: ${describeError(err)}`)
  }
  const keys = new Set<string>()
  const byKey = new Map<string, string>()
  for (const name of names) {
    if (name.startsWith('.') || name.endsWith('.md')) continue
    const path = join(dir, name)
    const match = KEY_FILE.exec(name)
    if (match === null) throw new TrustListError(`${path} is not a public key file: name trusted keys NAME.pub.pem (SPKI PEM) or NAME.pub (hex)`)
    const info = await stat(path)
    if (!info.isFile()) throw new TrustListError(`${path} is not a regular file: a trust directory holds one key file per builder`)
    if (info.size > MAX_KEY_FILE_BYTES) throw new TrustListError(`${path} is ${info.size} bytes, too large for a public key file`)
    let key: string
    try {
      key = parsePublicKey(await readFile(path, 'utf8'))
    } catch (err) {
      throw new TrustListError(`${path}: ${describeError(err)}`)
    }
    keys.add(key)
    if (!byKey.has(key)) byKey.set(key, match[1]!)
  }
  if (keys.size === 0) throw new TrustListError(`the trust directory ${dir} holds no keys: add NAME.pub.pem or NAME.pub files, or trust everyone by not giving a trust list`)
  return { keys, names: byKey }
}
