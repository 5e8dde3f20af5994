/** Fetching upstream releases for watches: checked sources, bounded reads, addresses a watch may reach. */
import type { WatchBody } from '../jobs/bodies.js'
import { lazily } from '../util/lazy.js'
import type { AddressPolicy } from './guard.js'
import type { Upstream } from './types.js'

export * from './constants.js'
export * from './errors.js'
export * from './types.js'
export { AddressPolicy } from './guard.js'

// The fetchers load at a watch's first poll, not with every node: most nodes
// poll no watch, and the HTTP client's `node:http` import alone made Node load
// its fetch implementation (undici) at start, ~4 MB of RSS.
const sources = {
  git: lazily('the git watch fetcher', async () => await import('./sources/git.js')),
  npm: lazily('the npm watch fetcher', async () => await import('./sources/npm.js')),
  pypi: lazily('the PyPI watch fetcher', async () => await import('./sources/pypi.js')),
  debian: lazily('the Debian watch fetcher', async () => await import('./sources/debian.js'))
}

/** The upstream a watch names (its fetcher loaded at the first use). */
export async function upstreamOf (watch: WatchBody, policy: AddressPolicy): Promise<Upstream> {
  switch (watch.kind) {
    case 'git': return (await sources.git()).gitUpstream(watch.source, watch.ref ?? 'refs/tags/*', policy)
    case 'npm': return (await sources.npm()).npmUpstream(watch.source, watch.package!, policy)
    case 'pypi': return (await sources.pypi()).pypiUpstream(watch.source, watch.package!, policy)
    case 'debian': return (await sources.debian()).debianUpstream(watch.source, watch.suite!, watch.package!, policy)
  }
}
