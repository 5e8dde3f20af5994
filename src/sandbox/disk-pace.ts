import { stat, statfs } from 'node:fs/promises'

/** How often a running step's workspace is looked at: a statfs of its file systems, and the least time between two walks. */
export const DISK_POLL_MS = 250
/** Walks of the workspace take at most this share of a step's time (of one core): a large tree is walked less often. */
export const DISK_WALK_SHARE = 0.02
/** A tree is walked at least this often, whatever a walk costs. */
export const DISK_WALK_MAX_GAP_MS = 5_000

/** What a file system says it holds (bytes allocated, inodes in use); undefined when it cannot say. */
export type FileSystemUse = (dir: string) => Promise<{ bytes: number, inodes: number | undefined } | undefined>

const fileSystemUse: FileSystemUse = async (dir) => {
  const fs = await statfs(dir).catch(() => undefined)
  if (fs === undefined) return undefined
  // A file system without a fixed inode table (btrfs) reports no inodes: growth in entries is then seen by the walks alone.
  return { bytes: (fs.blocks - fs.bfree) * fs.bsize, inodes: fs.files > 0 ? fs.files - fs.ffree : undefined }
}

/**
 * When to walk a running step's workspace again. A walk of a large build
 * tree (Debian's hello: thousands of files, ~20 ms with find) every 250 ms
 * cost ~8 % of a core beside the build. So walks are spaced by their own
 * cost (at most DISK_WALK_SHARE of the time, at least every
 * DISK_WALK_MAX_GAP_MS), and in between a statfs of the workspace's file
 * systems, which costs nothing, says how much they have grown since the
 * last walk began: if that growth could have taken the workspace past its
 * limit, the walk is due at once. A job that fills the disk fast is thus
 * still stopped within a poll. What statfs cannot see (a file freed elsewhere
 * on the same file system while the job writes, a sparse file) waits for
 * the next walk by the clock, and the strict walk when the step ends.
 */
export class DiskPace {
  private readonly dirs: string[]
  private readonly maxBytes: number
  private readonly maxEntries: number
  private readonly use: FileSystemUse
  private lastWalkEnd = -Infinity
  private gapMs = DISK_POLL_MS
  private bytes = 0
  private entries = 0
  /** Each file system's use when the last walk began: what grows past it may be the job's. */
  private base: Array<{ bytes: number, inodes: number | undefined } | undefined> | undefined
  private pendingBase: typeof this.base
  private fileSystems: string[] | undefined

  constructor (dirs: string[], limits: { maxBytes: number, maxEntries: number }, use: FileSystemUse = fileSystemUse) {
    this.dirs = dirs
    this.maxBytes = limits.maxBytes
    this.maxEntries = limits.maxEntries
    this.use = use
  }

  /** Whether a walk is due now: its time has come, or the file systems grew enough that the workspace may be over its limit. */
  async due (now: number): Promise<boolean> {
    if (now - this.lastWalkEnd >= this.gapMs || this.base === undefined) return true
    const current = await this.sample()
    let grownBytes = 0
    let grownInodes = 0
    for (let i = 0; i < current.length; i++) {
      const before = this.base[i]
      const after = current[i]
      // A file system that cannot be read now (or could not then) may hide anything: walk.
      if (before === undefined || after === undefined) return true
      grownBytes += Math.max(0, after.bytes - before.bytes)
      if (before.inodes !== undefined && after.inodes !== undefined) grownInodes += Math.max(0, after.inodes - before.inodes)
    }
    return this.bytes + grownBytes > this.maxBytes || this.entries + grownInodes > this.maxEntries
  }

  /** Call just before a walk: the file systems' use then is what the next growth is measured from. */
  async walkStarting (): Promise<void> {
    this.pendingBase = await this.sample()
  }

  /** Call after a walk that counted `bytes` and `entries` in `walkMs`. */
  walked (usage: { bytes: number, entries: number }, walkMs: number, now: number): void {
    this.bytes = usage.bytes
    this.entries = usage.entries
    this.base = this.pendingBase
    this.lastWalkEnd = now
    this.gapMs = Math.min(DISK_WALK_MAX_GAP_MS, Math.max(DISK_POLL_MS, walkMs / DISK_WALK_SHARE))
  }

  /** The time from one walk's end to the next by the clock alone, ms. */
  get gap (): number {
    return this.gapMs
  }

  /** One sample per file system (directories on the same device are counted once). */
  private async sample (): Promise<Array<{ bytes: number, inodes: number | undefined } | undefined>> {
    this.fileSystems ??= await distinctDevices(this.dirs)
    return await Promise.all(this.fileSystems.map(async (dir) => await this.use(dir).catch(() => undefined)))
  }
}

/** One directory per device among `dirs`, so that growth on a shared file system is not counted twice. */
async function distinctDevices (dirs: string[]): Promise<string[]> {
  const seen = new Set<number>()
  const kept: string[] = []
  for (const dir of dirs) {
    const device = (await stat(dir).catch(() => undefined))?.dev
    if (device !== undefined && seen.has(device)) continue
    if (device !== undefined) seen.add(device)
    kept.push(dir)
  }
  return kept
}
