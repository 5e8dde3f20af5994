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
