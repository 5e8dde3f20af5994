import { lazyCommand, type Command } from '../command.js'
import {
  attestSpec, auditSpec, cancelSpec, demoSpec, envCreateSpec, envGcSpec, envImportSpec, envListSpec, envRemoveSpec,
  envShowSpec, fetchSpec, initSpec, jobsSpec, joinSpec, logExportSpec, membersSpec, meshInitSpec, peersSpec,
  releaseSpec, statusSpec, submitSpec, swarmKeySpec, unvouchSpec, verifySpec, vouchSpec, watchAddSpec, watchListSpec,
  watchRemoveSpec, webhookAddSpec, webhookListSpec, webhookRemoveSpec
} from '../specs.js'

/**
 * Every CLI command: its spec (specs.ts), which parsing and help read, and
 * its module, loaded only when the command runs, so that a command loads
 * the code of no other (nor `--help` and `--version` any). Add a command by
 * writing its spec and its module and listing it here.
 */
export const commands: readonly Command[] = [
  lazyCommand(demoSpec, async () => (await import('./demo.js')).demoCommand),
  lazyCommand(initSpec, async () => (await import('./init.js')).initCommand),
  lazyCommand(joinSpec, async () => (await import('./join.js')).joinCommand),
  lazyCommand(submitSpec, async () => (await import('./submit.js')).submitCommand),
  lazyCommand(statusSpec, async () => (await import('./status.js')).statusCommand),
  lazyCommand(jobsSpec, async () => (await import('./jobs.js')).jobsCommand),
  lazyCommand(cancelSpec, async () => (await import('./cancel.js')).cancelCommand),
  lazyCommand(peersSpec, async () => (await import('./peers.js')).peersCommand),
  lazyCommand(meshInitSpec, async () => (await import('./mesh-init.js')).meshInitCommand),
  lazyCommand(membersSpec, async () => (await import('./members.js')).membersCommand),
  lazyCommand(vouchSpec, async () => (await import('./vouch.js')).vouchCommand),
  lazyCommand(unvouchSpec, async () => (await import('./vouch.js')).unvouchCommand),
  lazyCommand(logExportSpec, async () => (await import('./log-export.js')).logExportCommand),
  lazyCommand(auditSpec, async () => (await import('./audit.js')).auditCommand),
  lazyCommand(verifySpec, async () => (await import('./verify.js')).verifyCommand),
  lazyCommand(envListSpec, async () => (await import('./env.js')).envListCommand),
  lazyCommand(envCreateSpec, async () => (await import('./env.js')).envCreateCommand),
  lazyCommand(envImportSpec, async () => (await import('./env.js')).envImportCommand),
  lazyCommand(envRemoveSpec, async () => (await import('./env.js')).envRemoveCommand),
  lazyCommand(envGcSpec, async () => (await import('./env.js')).envGcCommand),
  lazyCommand(envShowSpec, async () => (await import('./env.js')).envShowCommand),
  lazyCommand(swarmKeySpec, async () => (await import('./swarm-key.js')).swarmKeyCommand),
  lazyCommand(attestSpec, async () => (await import('./attest.js')).attestCommand),
  lazyCommand(fetchSpec, async () => (await import('./fetch.js')).fetchCommand),
  lazyCommand(releaseSpec, async () => (await import('./fetch.js')).releaseCommand),
  lazyCommand(watchAddSpec, async () => (await import('./watch.js')).watchAddCommand),
  lazyCommand(watchListSpec, async () => (await import('./watch.js')).watchListCommand),
  lazyCommand(watchRemoveSpec, async () => (await import('./watch.js')).watchRemoveCommand),
  lazyCommand(webhookAddSpec, async () => (await import('./webhook.js')).webhookAddCommand),
  lazyCommand(webhookListSpec, async () => (await import('./webhook.js')).webhookListCommand),
  lazyCommand(webhookRemoveSpec, async () => (await import('./webhook.js')).webhookRemoveCommand)
] as unknown as readonly Command[]
