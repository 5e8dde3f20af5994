import { BuildhausError, EnvironmentError } from '../util/errors.js'

/** A listen address is taken by another program (often another node on the same port). */
export class PortInUseError extends EnvironmentError {
  override name = 'PortInUseError'
}

/** None of the bootstrap peers answered at start. */
export class BootstrapUnreachableError extends BuildhausError {
  override name = 'BootstrapUnreachableError'
}

/** A presence heartbeat failed validation (malformed, oversized, or of an unknown version). */
export class InvalidHeartbeatError extends BuildhausError {
  override name = 'InvalidHeartbeatError'
}

/** A dial or protocol that is not worth a relayed connection was asked of a peer reachable only through a relay. */
export class RelayOnlyError extends BuildhausError {
  override name = 'RelayOnlyError'
}
