import { describeError, PartUnavailableError } from './errors.js'

/**
 * A module loaded at its first use instead of at start: for the parts a node
 * may never use (watch fetchers, /metrics), which would otherwise hold memory
 * in every idle node (BENCHMARKS.md, "after the memory work"). `load` is an
 * `import()` of the module; it runs once, its module is shared by every
 * later call. A module that cannot be loaded (an incomplete installation)
 * gives a PartUnavailableError naming the part, at the point of use, and
 * the next call tries again.
 */
export function lazily<T> (what: string, load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined
  return async () => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined
      throw new PartUnavailableError(`buildhaus could not load ${what} (${describeError(err)}): its installation is incomplete; reinstall it (in a clone, npm ci)`, { cause: err })
    })
    return await loading
  }
}
