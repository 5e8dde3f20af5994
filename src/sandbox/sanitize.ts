/** An absolute path in running text: after a start, a space, a quote or one of `(=:,`, a `/` and what follows up to a space, quote, comma or closing bracket. The curly quotes are written as escapes: V8 holds a source with any character outside ASCII at two bytes a character, and the node's bundle is one file (scripts/bundle.js). */
const ABSOLUTE_PATH = /(^|[\s'"\u2018`(=:,])\/[^\s'"\u2019`),:]*/g

/**
 * Keeps the node's own paths out of what a run reports. A run's reason, its
 * log and any error the sandbox throws can end up in a signed result that
 * the whole mesh stores forever: where the node keeps its home, its work
 * directory or its staged workspaces is none of the mesh's business (and a
 * path thousands of characters long would not fit a result anyway). The
 * run's own directories become names (`<workspace>`, `<work>`); any other
 * absolute path becomes `<path>`.
 */
export class HostPaths {
  private readonly known: Array<[string, string]> = []

  /** Name a host directory: it (and anything below it) is shown as `name`. */
  add (path: string, name: string): this {
    if (path !== '' && path !== '/') this.known.push([path, name])
    // Longest first, so a directory inside another keeps its own name.
    this.known.sort((a, b) => b[0].length - a[0].length)
    return this
  }

  scrub (text: string): string {
    let out = text
    for (const [path, name] of this.known) out = out.split(path).join(name)
    return out.replace(ABSOLUTE_PATH, (_match, before: string) => `${before}<path>`)
  }

  /** One line for an error, scrubbed: an fs error keeps its code and call (`ENOSPC: no space left on device, write`). */
  fault (err: unknown): string {
    const text = err instanceof Error ? err.message : String(err)
    const line = text.split('\n')[0]!.trim()
    return this.scrub(line.length > 300 ? `${line.slice(0, 300)}…` : line)
  }
}
