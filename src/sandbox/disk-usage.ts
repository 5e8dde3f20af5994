import { chmod, lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'

export interface DiskUsage {
  bytes: number
  entries: number
}

export interface DiskUsageOptions {
  /** Stop counting once past this many bytes… */
  maxBytes: number
  /** …or this many entries: the caller only needs to know the bound was passed. */
  maxEntries: number
  /**
   * Make unreadable directories readable again (chmod u+rwx) instead of
   * skipping them: for a node that shares its uid with the build, where a job
   * could otherwise hide files from this count behind a mode-000 directory.
   */
  reopenUnreadable: boolean
}

/**
 * What a directory tree costs on disk, never following symlinks. A file
 * counts its apparent size or its allocated blocks, whichever is larger, so a
 * sparse file cannot pass for small; every entry counts, so a flood of empty
 * files passes the entry bound.
 */
export async function diskUsage (root: string, options: DiskUsageOptions): Promise<DiskUsage> {
  const usage: DiskUsage = { bytes: 0, entries: 0 }
  const pending = [root]
  while (pending.length > 0) {
    const dir = pending.pop()!
    const names = await listDir(dir, options.reopenUnreadable)
    for (const name of names) {
      const path = join(dir, name)
      let stats
      try {
        stats = await lstat(path)
      } catch {
        continue // deleted while we walked
      }
      usage.entries++
      usage.bytes += stats.isFile() ? Math.max(stats.size, stats.blocks * 512) : stats.blocks * 512
      if (usage.bytes > options.maxBytes || usage.entries > options.maxEntries) return usage
      if (stats.isDirectory()) pending.push(path)
    }
  }
  return usage
}

async function listDir (dir: string, reopen: boolean): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EACCES' && reopen) {
      await chmod(dir, 0o700).catch(() => {})
      return await readdir(dir).catch(() => [])
    }
    return []
  }
}
