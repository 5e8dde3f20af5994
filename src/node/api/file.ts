import { readFile, rename, rm, writeFile } from 'node:fs/promises'

/**
 * `api.json` in the home: how CLI commands find the running node. Written at
 * start and removed at a clean stop. After a crash it stays behind, stale and
 * harmless: readers check that its pid lives and its API answers, and the
 * next start overwrites it. It is not a lock.
 */
export interface ApiFile {
  url: string
  pid: number
  peerId: string
  /** When the node started, ms since the epoch. */
  startedAt: number
}

/**
 * The parsed api.json as an ApiFile, or what is wrong with it. Checked by
 * hand: every command that talks to a node reads this file, and a schema
 * library would be most of what such a command loads (docs/ARCHITECTURE.md).
 */
function checkApiFile (value: unknown): ApiFile | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object'
  const { url, pid, peerId, startedAt } = value as Record<string, unknown>
  if (typeof url !== 'string' || url.length > 256) return 'url: not a string of at most 256 characters'
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return 'pid: not a positive integer'
  if (typeof peerId !== 'string' || peerId.length > 128) return 'peerId: not a string of at most 128 characters'
  if (typeof startedAt !== 'number' || !Number.isSafeInteger(startedAt) || startedAt < 0) return 'startedAt: not a whole number of milliseconds'
  return { url, pid, peerId, startedAt }
}

/** Largest api.json read; it is a few hundred bytes. */
const MAX_API_FILE_BYTES = 16 * 1024

export async function writeApiFile (path: string, info: ApiFile): Promise<void> {
  // Write then rename, so a reader never sees half a file.
  // Only the node writes this file; a command that reads it need not load node:crypto (~5–9 ms of its start).
  const partial = `${path}.${process.getBuiltinModule('node:crypto').randomBytes(4).toString('hex')}.tmp`
  await writeFile(partial, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 })
  await rename(partial, path)
}

export type ApiFileRead =
  | { state: 'missing' }
  | { state: 'malformed', reason: string }
  | { state: 'ok', info: ApiFile }

export async function readApiFile (path: string): Promise<ApiFileRead> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' }
    return { state: 'malformed', reason: (err as Error).message }
  }
  if (text.length > MAX_API_FILE_BYTES) return { state: 'malformed', reason: 'file too large' }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return { state: 'malformed', reason: 'not JSON' }
  }
  const checked = checkApiFile(parsed)
  return typeof checked === 'string' ? { state: 'malformed', reason: checked } : { state: 'ok', info: checked }
}

/** Remove api.json if it is still ours (same pid): never delete another process's file. */
export async function removeApiFile (path: string, pid = process.pid): Promise<void> {
  const current = await readApiFile(path)
  if (current.state === 'ok' && current.info.pid !== pid) return
  await rm(path, { force: true })
}

/** Whether a process with this pid exists (it may be another program that reused the pid). */
export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
