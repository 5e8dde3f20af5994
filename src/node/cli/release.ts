import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rename, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { dirname, relative, resolve, sep } from 'node:path'
// The modules themselves, not the layer's index.ts, which brings the node's job service too.
import { jobEntryRules, type Artifact } from '../../jobs/bodies.js'
import { compareEntries, foldJob } from '../../jobs/state.js'
import type { TrustPolicy } from '../../jobs/trust.js'
import { globMatcher } from '../../jobs/verdict.js'
import type { JobView } from '../../jobs/view.js'
import { EntryCodec, type DecodedEntry } from '../../ledger/entry.js'
import { canonicalJson } from '../../util/canonical-json.js'
import { describeError } from '../../util/errors.js'
import { NotVerifiedError } from '../errors.js'
import type { NodeClient } from './client.js'

/**
 * What `fetch` and `release` do on the user's side: take a job's signed
 * entries from a node, check every signature and id here, fold the verdict
 * under the user's own trust policy, and download the verified artifacts,
 * checking each one's sha256 before it is kept. The node is not trusted:
 * it is only where the bytes come from.
 */

/** Largest artifact downloaded (as a builder's blob store allows). */
export const MAX_ARTIFACT_BYTES = 2 * 1024 * 1024 * 1024

const codec = new EntryCodec(jobEntryRules)

/** The job's entries as the node serves them (GET /api/jobs/:id/entries), each checked here (signature, id, body). */
export async function checkedEntries (client: NodeClient, id: string, signal: AbortSignal): Promise<DecodedEntry[]> {
  const { entries } = await client.getJson<{ entries: Array<Record<string, unknown> & { id: string }> }>(`/api/jobs/${id}/entries`, { signal })
  const checked: DecodedEntry[] = []
  for (const { id: claimed, ...entry } of entries) {
    let decoded: DecodedEntry
    try {
      decoded = codec.decode(canonicalJson(entry))
    } catch (err) {
      throw new NotVerifiedError(`the node served an entry that does not check out (${describeError(err)}); ask another node`)
    }
    if (decoded.id !== claimed) throw new NotVerifiedError(`the node served entry ${claimed} whose bytes hash to ${decoded.id}; ask another node`)
    checked.push(decoded)
  }
  return checked
}

/** Fold the job from checked entries under the user's policy; the forked authors among them are not believed. */
export function foldChecked (id: string, entries: readonly DecodedEntry[], policy: TrustPolicy): JobView {
  const job = entries.find((e) => e.id === id && e.entry.type === 'job')
  if (job === undefined) throw new NotVerifiedError(`the node served no job entry ${id}`)
  return foldJob(job, entries.filter((e) => e !== job), policy)
}

export interface WantedFile {
  platform: string
  artifact: Artifact
  /** Where it goes, relative to the output directory. */
  target: string
}

/**
 * The verified artifacts to write: every verified platform's agreed files
 * (or one platform's, or those matching `pathGlob`). With one platform the
 * files go to `<path>`, with several to `<platform>/<path>`. Throws
 * NotVerifiedError when nothing selected is verified under the policy.
 */
export function wantedFiles (view: JobView, options: { platform?: string, pathGlob?: string }): WantedFile[] {
  const platforms = view.platforms.filter((p) => options.platform === undefined || p.selector === options.platform)
  if (options.platform !== undefined && platforms.length === 0) throw new NotVerifiedError(`job ${view.id.slice(0, 12)} has no platform ${options.platform} (it has ${view.platforms.map((p) => p.selector).join(', ')})`)
  const verified = platforms.filter((p) => p.verdict === 'verified')
  if (verified.length === 0) {
    throw new NotVerifiedError(`job ${view.id.slice(0, 12)} (${view.name}) is not verified under your policy: ${platforms.map((p) => `${p.selector} ${p.verdict}${p.reason !== undefined ? ` (${p.reason})` : ''}`).join('; ')}`)
  }
  const matches = options.pathGlob !== undefined ? globMatcher([options.pathGlob]) : () => true
  const nested = verified.length > 1
  const files = verified.flatMap((p) => (p.artifacts ?? []).filter((a) => matches(a.path) || (options.pathGlob !== undefined && a.path.startsWith(`${options.pathGlob.replace(/\/$/, '')}/`)))
    .map((artifact) => ({ platform: p.selector, artifact, target: nested ? `${p.selector}/${artifact.path}` : artifact.path })))
  if (files.length === 0) throw new NotVerifiedError(`no verified artifact of job ${view.id.slice(0, 12)} matches ${options.pathGlob ?? 'anything'}`)
  return files
}

/** Download one blob into `dest` (which must not exist), keeping it only if it has the expected sha256 and size. */
export async function downloadChecked (client: NodeClient, artifact: Artifact, dest: string, signal: AbortSignal): Promise<void> {
  await mkdir(dirname(dest), { recursive: true })
  const tmp = `${dest}.part-${process.pid}`
  const out = createWriteStream(tmp, { flags: 'wx' })
  const hash = createHash('sha256')
  let size = 0
  try {
    await Promise.race([once(out, 'open'), once(out, 'error').then(([err]) => { throw err as Error })])
    for await (const chunk of await client.getBytes(`/api/blobs/${artifact.sha256}`, { signal })) {
      size += chunk.byteLength
      if (size > artifact.size || size > MAX_ARTIFACT_BYTES) throw new NotVerifiedError(`the node sent more than the ${artifact.size} bytes of ${artifact.path}; nothing was kept`)
      hash.update(chunk)
      if (!out.write(chunk)) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
    const got = hash.digest('hex')
    if (got !== artifact.sha256 || size !== artifact.size) throw new NotVerifiedError(`the bytes the node sent for ${artifact.path} hash to ${got} (${size} bytes), not the verified ${artifact.sha256} (${artifact.size} bytes); nothing was kept`)
    await rename(tmp, dest)
  } catch (err) {
    out.destroy()
    await rm(tmp, { force: true })
    throw err
  }
}

/** `root/target`, refusing anything that would land outside `root`. */
export function inside (root: string, target: string): string {
  const path = resolve(root, target)
  const rel = relative(resolve(root), path)
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep) || resolve(rel) === rel) throw new NotVerifiedError(`the artifact path ${target} would leave ${root}`)
  return path
}

/**
 * The slice of the log that proves a job: the job entry, every entry that
 * refers to it (claims, results, cancels, diagnoses), and the watch entry
 * that triggered it, in fold order, one canonical line each. Every author's
 * chain in it has gaps (the rest of its log): `audit --slice` checks it.
 */
export function logSlice (entries: readonly DecodedEntry[]): string[] {
  return [...new Map(entries.map((e) => [e.id, e])).values()].sort(compareEntries).map((e) => canonicalJson(e.entry))
}


/** The node's vouch, unvouch and revoke entries, each checked here (signature, id): the evidence of membership. */
export async function checkedMembershipEntries (client: NodeClient, signal: AbortSignal): Promise<DecodedEntry[]> {
  const { entries } = await client.getJson<{ entries: Array<Record<string, unknown> & { id: string }> }>('/api/members/entries', { signal })
  return entries.map(({ id, ...entry }) => checkedLines([entry], id)[0]!)
}

/** Check entries given as objects (without their id) and their claimed ids; as checkedEntries does for a job. */
export function checkedLines (entries: Array<Record<string, unknown>>, ...ids: string[]): DecodedEntry[] {
  return entries.map((entry, i) => {
    let decoded: DecodedEntry
    try {
      decoded = codec.decode(canonicalJson(entry))
    } catch (err) {
      throw new NotVerifiedError(`an entry does not check out (${describeError(err)})`)
    }
    if (ids[i] !== undefined && decoded.id !== ids[i]) throw new NotVerifiedError(`entry ${ids[i]} hashes to ${decoded.id}`)
    return decoded
  })
}
