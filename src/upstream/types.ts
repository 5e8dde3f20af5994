/** One release an upstream lists: its name (a version or tag) and, when the upstream says, when it was published. */
export interface ListedRelease {
  release: string
  publishedAt?: number
}

/** A release fetched and checked: its files in `dir`, and where they came from with the digest the upstream published. */
export interface FetchedRelease {
  release: string
  /** A directory holding the release's tree (or, for Debian, its .dsc and files), ready to pack. */
  dir: string
  upstream: { url: string, digest: Partial<Record<'sha256' | 'sha512' | 'sha1' | 'gitCommit', string>> }
}

export interface Upstream {
  /** Every release the upstream lists now (bounded). */
  list (signal: AbortSignal): Promise<ListedRelease[]>
  /** Fetch one release into a new directory under `workDir`, checking it against the upstream's digest. */
  fetch (release: string, workDir: string, signal: AbortSignal): Promise<FetchedRelease>
}
