/**
 * The node's long-lived services beyond the layers' own (each has start()/stop(),
 * and daemon.ts starts them in order on a ServiceStack):
 */

/** The stack that starts services in order and stops them in reverse, past failures. */
export { ServiceStack, type Service } from './stack.js'
/** The environments this node offers: made in the background, held, advertised, leased to builds. */
export { NodeEnvironments, type NodeEnvironmentsOptions } from './environments.js'
/** Watches: which node polls which upstream, and a job per new release. */
export { Watcher, type WatcherParts } from './watcher.js'
/** Releases stay fetchable: a builder pins what it built and agreed on, for the retention. */
export { ReleasePins, type ReleasePinParts } from './release-pins.js'
/** Webhooks: the verdicts posted to the operator's URLs (webhooks.json). */
export { WebhookNotifier, WebhookSender } from './webhooks.js'
/** Live logs: following running builds for the API's clients. */
export { LiveLogRelay, type LiveEvent } from './live-logs.js'
/** The node's clock against its peers': a warning before they stop hearing it. */
export { ClockWatch, CLOCK_WARN_MS, type ClockWatchComponents } from './clock-watch.js'
