import { logger as libp2pLogger } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'

export type { Logger }

/**
 * A debug logger per component, enabled with `DEBUG=buildhaus:*` (or a narrower
 * pattern such as `DEBUG=buildhaus:ledger:sync`). Same mechanism as libp2p's own
 * loggers, so `DEBUG=buildhaus:*,libp2p:gossipsub*` shows both in one stream.
 */
export function componentLogger (component: string): Logger {
  return libp2pLogger(`buildhaus:${component}`)
}
