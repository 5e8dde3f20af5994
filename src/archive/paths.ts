import { lstat, readlink } from 'node:fs/promises'
import { join } from 'node:path'

/** Most symlinks the kernel follows in one lookup (Linux MAXSYMLINKS). */
const MAX_LINK_HOPS = 40

export type EntryNameProblem = 'absolute-path' | 'parent-path' | 'empty'

/**
 * Split a tar member name into path components relative to the archive root.
 * `./a//b/` → ['a', 'b']; an absolute name or any `..` component is a problem,
 * never silently "fixed" (a tarball that tries it is hostile or broken).
 */
export function entryComponents (name: string): string[] | EntryNameProblem {
  if (name.startsWith('/')) return 'absolute-path'
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') return 'parent-path'
    parts.push(part)
  }
  return parts.length === 0 ? 'empty' : parts
}

/**
 * Whether following the symlink target `target`, found in the directory
 * `linkDir` (components below `root`), ever leaves `root`, resolving the way
 * the kernel does: each component in turn, symlinks met on the way (inside the
 * tree, read from disk) substituted, `..` applied to the resolved path. A
 * purely lexical check is not enough: with `sub/l -> ..`, the target
 * `l/..` of a link in `sub` looks like `sub` but reaches the tree's parent.
 * Absolute targets always leave (the tree will be unpacked elsewhere), as do
 * link loops. Missing components are taken literally: the kernel would stop
 * there with ENOENT.
 */
export async function linkLeavesRoot (root: string, linkDir: readonly string[], target: string): Promise<boolean> {
  if (target.startsWith('/')) return true
  const resolved = [...linkDir]
  const pending = target.split('/')
  let hops = 0
  while (pending.length > 0) {
    const part = pending.shift()!
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (resolved.length === 0) return true
      resolved.pop()
      continue
    }
    const here = join(root, ...resolved, part)
    let isLink = false
    try {
      isLink = (await lstat(here)).isSymbolicLink()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err
    }
    if (!isLink) {
      resolved.push(part)
      continue
    }
    if (++hops > MAX_LINK_HOPS) return true
    const next = await readlink(here)
    if (next.startsWith('/')) return true
    pending.unshift(...next.split('/'))
  }
  return false
}

/** Compare paths by their UTF-8 bytes: the same order on every machine and locale. */
export function compareBytes (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}
