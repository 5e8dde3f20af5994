import { describeError } from '../../util/errors.js'
import { componentLogger } from '../../util/logger.js'

const log = componentLogger('node:services')

/** A long-lived part of the node. */
export interface Service {
  start (): void | Promise<void>
  stop (): void | Promise<void>
}

/**
 * The node's services in start order. `start()` starts one and remembers it;
 * `stopAll()` stops everything started so far in reverse order, carrying on
 * past failures, so a half-started node unwinds as cleanly as a running one.
 */
export class ServiceStack {
  private readonly started: Array<{ name: string, service: Service }> = []

  async start<S extends Service> (name: string, service: S): Promise<S> {
    log('starting %s', name)
    await service.start()
    this.started.push({ name, service })
    return service
  }

  /** Register something already running (or with nothing to start) so that it is stopped in turn. */
  add<S extends Service> (name: string, service: S): S {
    this.started.push({ name, service })
    return service
  }

  get names (): string[] {
    return this.started.map((s) => s.name)
  }

  async stopAll (): Promise<void> {
    const errors: unknown[] = []
    while (this.started.length > 0) {
      const { name, service } = this.started.pop()!
      try {
        log('stopping %s', name)
        await service.stop()
      } catch (err) {
        log.error('stopping %s failed: %s', name, describeError(err))
        errors.push(err)
      }
    }
    if (errors.length > 0) throw errors[0]
  }
}
