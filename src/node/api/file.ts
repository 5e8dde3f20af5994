import { randomBytes } from 'node:crypto'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { z } from 'zod'

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

const apiFileSchema = z.object({
  url: z.string().max(256),
  pid: z.number().int().positive(),
  peerId: z.string().max(128),
  startedAt: z.number().int().min(0)
})

/** Largest api.json read; it is a few hundred bytes. */
const MAX_API_FILE_BYTES = 16 * 1024

export async function writeApiFile (path: string, info: ApiFile): Promise<void> {
  // Write then rename, so a reader never sees half a file.
  const partial = `${path}.${randomBytes(4).toString('hex')}.tmp`
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
  try {
    const parsed = apiFileSchema.safeParse(JSON.parse(text))
    if (parsed.success) return { state: 'ok', info: parsed.data }
    return { state: 'malformed', reason: parsed.error.issues[0]?.message ?? 'unexpected content' }
  } catch {
    return { state: 'malformed', reason: 'not JSON' }
  }
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
