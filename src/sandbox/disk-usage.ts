import { lstatSync, opendirSync } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { recordSplitter, reopenTree, runTreeTool, treeTools } from './tree-walk.js'

export interface DiskUsage {
  bytes: number
  entries: number
  /**
   * The walk saw the whole tree, or stopped because it had seen more than the
   * bounds. False when part of it could not be read: the count is then a
   * lower bound, and `problem` says why (never with a host path).
   */
  complete: boolean
  problem?: string
}

export interface DiskUsageOptions {
  /** Stop counting once past this many bytes… */
  maxBytes: number
  /** …or this many entries: the caller only needs to know the bound was passed. */
  maxEntries: number
  /**
   * Make unreadable directories readable again (chmod u+rwX) when the walk
   * finds one: for a node that shares its uid with the build, where a job
   * could otherwise hide files from this count behind a mode-000 directory.
   */
  reopenUnreadable: boolean
}

/** One line per entry below the root: its type, apparent size and allocated 512-byte blocks. */
const FIND_FORMAT = '%y %s %b\\n'

/**
 * Up to this many entries a tree is walked in-process (well under a
 * millisecond for a small workspace, where starting find costs a few): past
 * it, or at the first entry the walk cannot stat for any reason but having
 * vanished, GNU find measures the whole tree instead.
 */
const IN_PROCESS_ENTRIES = 1000

/**
 * Up to this many entries the in-process walk makes direct system calls: a
 * run's workspace usually holds a few dozen, and each thread-pool round trip
 * costs ~50 µs of CPU on a small VM and waits for the event loop. Past it
 * the walk starts again through the thread pool.
 */
const DIRECT_ENTRIES = 128

/**
 * What a directory tree costs on disk, at any depth, never following
 * symlinks nor leaving the file system. A file counts its apparent size or
 * its allocated blocks, whichever is larger, so a sparse file cannot pass for
 * small; every entry counts, so a flood of empty files passes the entry
 * bound. Small trees are walked in-process; anything larger, deeper than a
 * path can reach (PATH_MAX) or unreadable is measured by GNU find, which
 * works relative to directory descriptors.
 */
export async function diskUsage (root: string, options: DiskUsageOptions): Promise<DiskUsage> {
  const quick = walkSmallTree(root, options) ?? await walkInProcess(root, options)
  if (quick !== undefined) return quick
  const first = await walkWithFind(root, options)
  if (first.complete || !options.reopenUnreadable) return first
  await reopenTree(root)
  return await walkWithFind(root, options)
}

/** walkInProcess's count of a tree of at most DIRECT_ENTRIES entries, with direct calls; undefined for anything else (a larger tree, any error). */
function walkSmallTree (root: string, options: DiskUsageOptions): DiskUsage | undefined {
  const usage: DiskUsage = { bytes: 0, entries: 0, complete: true }
  const pending = [root]
  try {
    while (pending.length > 0) {
      const dir = pending.pop()!
      const handle = opendirSync(dir)
      try {
        for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
          if (usage.entries >= DIRECT_ENTRIES) return undefined
          const path = join(dir, entry.name)
          const stats = lstatSync(path)
          usage.entries++
          usage.bytes += stats.isFile() ? Math.max(stats.size, stats.blocks * 512) : stats.blocks * 512
          if (usage.bytes > options.maxBytes || usage.entries > options.maxEntries) return usage
          if (stats.isDirectory()) pending.push(path)
        }
      } finally {
        handle.closeSync()
      }
    }
  } catch {
    return undefined
  }
  return usage
}

/** The walk in Node, or undefined as soon as it meets what only find handles (too many entries, a path too long, an unreadable directory). */
async function walkInProcess (root: string, options: DiskUsageOptions): Promise<DiskUsage | undefined> {
  const usage: DiskUsage = { bytes: 0, entries: 0, complete: true }
  const pending = [root]
  while (pending.length > 0) {
    const dir = pending.pop()!
    let names: string[]
    try {
      names = await readdir(dir)
    } catch (err) {
      if (dir !== root && (err as NodeJS.ErrnoException).code === 'ENOENT') continue // deleted while we walked
      return undefined
    }
    for (const name of names) {
      let stats
      try {
        stats = await lstat(join(dir, name))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        return undefined
      }
      usage.entries++
      usage.bytes += stats.isFile() ? Math.max(stats.size, stats.blocks * 512) : stats.blocks * 512
      if (usage.bytes > options.maxBytes || usage.entries > options.maxEntries) return usage
      if (usage.entries > IN_PROCESS_ENTRIES) return undefined
      if (stats.isDirectory()) pending.push(join(dir, name))
    }
  }
  return usage
}

async function walkWithFind (root: string, options: DiskUsageOptions): Promise<DiskUsage> {
  const { find } = await treeTools()
  const usage: DiskUsage = { bytes: 0, entries: 0, complete: true }
  const over = (): boolean => usage.bytes > options.maxBytes || usage.entries > options.maxEntries
  const onLine = recordSplitter(0x0a, 128, (line) => {
    const [type, size, blocks] = line.toString('latin1').split(' ')
    const allocated = Number(blocks) * 512
    usage.entries++
    usage.bytes += type === 'f' ? Math.max(Number(size), allocated) : allocated
    return !over()
  })
  const run = await runTreeTool(find, ['-P', root, '-xdev', '-mindepth', '1', '-printf', FIND_FORMAT], onLine)
  if (run.ok || run.stopped) return usage
  usage.complete = false
  usage.problem = run.problem ?? 'the walk failed'
  return usage
}
