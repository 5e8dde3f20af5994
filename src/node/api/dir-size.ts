import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** Most files one measurement stats (a LevelDB directory holds a few per 2 MB of data). */
const MAX_FILES = 100_000

/**
 * Bytes a directory's files take on disk (allocated blocks, or the apparent
 * size when larger), one level deep and subdirectories below it: what
 * `du -s` would say of a LevelDB directory. Files that vanish while it counts
 * (compaction) are skipped.
 */
export async function directoryBytes (dir: string): Promise<number> {
  let total = 0
  let files = 0
  const pending = [dir]
  while (pending.length > 0 && files < MAX_FILES) {
    const current = pending.pop()!
    let names: string[]
    try {
      names = await readdir(current)
    } catch {
      continue
    }
    for (const name of names) {
      if (++files > MAX_FILES) break
      try {
        const info = await stat(join(current, name))
        if (info.isDirectory()) pending.push(join(current, name))
        else total += Math.max(info.size, info.blocks * 512)
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return total
}

/** A value computed at most every `ttlMs`, shared by concurrent callers. */
export function cached<T> (ttlMs: number, compute: () => Promise<T>): () => Promise<T> {
  let last: { at: number, value: Promise<T> } | undefined
  return async () => {
    const now = Date.now()
    if (last === undefined || now - last.at > ttlMs) {
      const value = compute()
      last = { at: now, value }
      value.catch(() => { last = undefined })
    }
    return await last.value
  }
}
