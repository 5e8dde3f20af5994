/** Fetching upstream releases for watches: checked sources, bounded reads, addresses a watch may reach. */
import type { WatchBody } from '../jobs/bodies.js'
import type { AddressPolicy } from './guard.js'
import { debianUpstream } from './sources/debian.js'
import { gitUpstream } from './sources/git.js'
import { npmUpstream } from './sources/npm.js'
import { pypiUpstream } from './sources/pypi.js'
import type { Upstream } from './types.js'

export * from './constants.js'
export * from './errors.js'
export * from './types.js'
export { AddressPolicy } from './guard.js'
export { boundedGet } from './http.js'

/** The upstream a watch names. */
export function upstreamOf (watch: WatchBody, policy: AddressPolicy): Upstream {
  switch (watch.kind) {
    case 'git': return gitUpstream(watch.source, watch.ref ?? 'refs/tags/*', policy)
    case 'npm': return npmUpstream(watch.source, watch.package!, policy)
    case 'pypi': return pypiUpstream(watch.source, watch.package!, policy)
    case 'debian': return debianUpstream(watch.source, watch.suite!, watch.package!, policy)
  }
}
