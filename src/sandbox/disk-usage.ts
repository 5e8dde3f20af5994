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
 * What a directory tree costs on disk, at any depth (GNU find, relative to
 * directory descriptors: a path past PATH_MAX is counted like any other),
 * never following symlinks nor leaving the file system. A file counts its
 * apparent size or its allocated blocks, whichever is larger, so a sparse
 * file cannot pass for small; every entry counts, so a flood of empty files
 * passes the entry bound.
 */
export async function diskUsage (root: string, options: DiskUsageOptions): Promise<DiskUsage> {
  const first = await walk(root, options)
  if (first.complete || !options.reopenUnreadable) return first
  await reopenTree(root)
  return await walk(root, options)
}

async function walk (root: string, options: DiskUsageOptions): Promise<DiskUsage> {
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
