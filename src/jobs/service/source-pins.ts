import type { JobBlobs } from './ports.js'

/**
 * The sources this node keeps pinned for its own jobs, so that builders can
 * still fetch them: a source is pinned while anything of this node needs it
 * (a submit under way, or one of its jobs not yet decided) and unpinned when
 * the last of those lets go. An author often submits one source several
 * times (a rerun, the same tarball for another platform): the first of those
 * jobs to be decided must not unpin what the others still need.
 *
 * The pins are the store's in-memory ones (no marker file): the store
 * keeps a blob from the moment pin() is called, so a submit that races the
 * unpin of the job before it ends pinned, and a node that restarts pins the
 * sources of its undecided jobs again from the log (JobService.start). A
 * marker made and removed for every job cost the disk two metadata changes
 * that the job entry's fsync then had to commit.
 */
export class SourcePins {
  private readonly users = new Map<string, Set<string>>()

  constructor (
    private readonly blobs: Pick<JobBlobs, 'pin' | 'unpin'>,
    private readonly onUnpinError: (source: string, err: unknown) => void
  ) {}

  /** `user` (a job's id, or a name for a submit under way) needs `source`: it is pinned from this call on. Rejects if the store does not hold it. */
  async hold (source: string, user: string): Promise<void> {
    const users = this.users.get(source)
    if (users === undefined) this.users.set(source, new Set([user]))
    else users.add(user)
    await this.blobs.pin(source, { persist: false })
  }

  /** `user` no longer needs `source`: unpinned unless something else still does. A no-op for a user that held nothing. */
  release (source: string, user: string): void {
    const users = this.users.get(source)
    if (users === undefined || !users.delete(user) || users.size > 0) return
    this.users.delete(source)
    void (async () => { await this.blobs.unpin(source) })().catch((err: unknown) => { this.onUnpinError(source, err) })
  }
}
