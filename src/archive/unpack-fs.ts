import { closeSync, constants as fsConstants, fchmodSync, futimesSync, lstatSync, mkdirSync, openSync, symlinkSync, linkSync, unlinkSync, writeSync, type Stats } from 'node:fs'
import { link, lstat, mkdir, open, symlink, unlink } from 'node:fs/promises'

/** What a path holds, without following a link; undefined when nothing is there. */
export type PathKind = 'directory' | 'file' | 'symlink' | 'other' | undefined

/** A file being written from an archive member. */
export interface FileSink {
  write: (chunk: Buffer) => Promise<void>
  /** Set the mode (the umask may have narrowed the one given at creation) and, if given, the mtime. */
  finish: (mode: number, mtime: Date | undefined) => Promise<void>
  close: () => Promise<void>
}

/**
 * The file system calls an unpack makes, in one of two forms with the same
 * behaviour: through the thread pool (`threadPoolFs`), or as direct system
 * calls (`directFs`) for the first members of a small archive, where each
 * thread-pool round trip waits for a busy event loop (on a loaded node a
 * one-file source took 3–10 ms to unpack, most of it queueing).
 */
export interface UnpackFs {
  kind: (path: string) => Promise<PathKind>
  mkdir: (path: string, mode: number) => Promise<void>
  unlink: (path: string) => Promise<void>
  symlink: (target: string, path: string) => Promise<void>
  link: (existing: string, path: string) => Promise<void>
  /** Create a new regular file: never through a link, never over an existing one. */
  create: (path: string, mode: number) => Promise<FileSink>
}

const CREATE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW

function kindOf (stats: Stats): PathKind {
  if (stats.isSymbolicLink()) return 'symlink'
  if (stats.isDirectory()) return 'directory'
  if (stats.isFile()) return 'file'
  return 'other'
}

function absent (err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
  throw err
}

export const threadPoolFs: UnpackFs = {
  kind: async (path) => await lstat(path).then(kindOf, absent),
  mkdir: async (path, mode) => { await mkdir(path, { mode }) },
  unlink: async (path) => { await unlink(path) },
  symlink: async (target, path) => { await symlink(target, path) },
  link: async (existing, path) => { await link(existing, path) },
  create: async (path, mode) => {
    const handle = await open(path, CREATE_FLAGS, mode)
    return {
      write: async (chunk) => { await handle.write(chunk) },
      finish: async (finalMode, mtime) => {
        await handle.chmod(finalMode)
        if (mtime !== undefined) await handle.utimes(mtime, mtime)
      },
      close: async () => { await handle.close() }
    }
  }
}

export const directFs: UnpackFs = {
  kind: async (path) => {
    const stats = lstatSync(path, { throwIfNoEntry: false })
    return stats === undefined ? undefined : kindOf(stats)
  },
  mkdir: async (path, mode) => { mkdirSync(path, { mode }) },
  unlink: async (path) => { unlinkSync(path) },
  symlink: async (target, path) => { symlinkSync(target, path) },
  link: async (existing, path) => { linkSync(existing, path) },
  create: async (path, mode) => {
    const fd = openSync(path, CREATE_FLAGS, mode)
    return {
      write: async (chunk) => {
        for (let written = 0; written < chunk.length;) written += writeSync(fd, chunk, written)
      },
      finish: async (finalMode, mtime) => {
        fchmodSync(fd, finalMode)
        if (mtime !== undefined) futimesSync(fd, mtime, mtime)
      },
      close: async () => { closeSync(fd) }
    }
  }
}
