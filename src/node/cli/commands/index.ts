import type { Command } from '../command.js'
import { attestCommand } from './attest.js'
import { fetchCommand, releaseCommand } from './fetch.js'
import { watchAddCommand, watchListCommand, watchRemoveCommand } from './watch.js'
import { auditCommand } from './audit.js'
import { cancelCommand } from './cancel.js'
import { demoCommand } from './demo.js'
import { envCreateCommand, envGcCommand, envImportCommand, envListCommand, envRemoveCommand, envShowCommand } from './env.js'
import { initCommand } from './init.js'
import { jobsCommand } from './jobs.js'
import { joinCommand } from './join.js'
import { logExportCommand } from './log-export.js'
import { membersCommand } from './members.js'
import { meshInitCommand } from './mesh-init.js'
import { peersCommand } from './peers.js'
import { statusCommand } from './status.js'
import { submitCommand } from './submit.js'
import { swarmKeyCommand } from './swarm-key.js'
import { verifyCommand } from './verify.js'
import { unvouchCommand, vouchCommand } from './vouch.js'
import { webhookAddCommand, webhookListCommand, webhookRemoveCommand } from './webhook.js'

/**
 * Every CLI command, one module each. Add a command by writing its module and
 * listing it here.
 */
export const commands: readonly Command[] = [
  demoCommand,
  initCommand,
  joinCommand,
  submitCommand,
  statusCommand,
  jobsCommand,
  cancelCommand,
  peersCommand,
  meshInitCommand,
  membersCommand,
  vouchCommand,
  unvouchCommand,
  logExportCommand,
  auditCommand,
  verifyCommand,
  envListCommand,
  envCreateCommand,
  envImportCommand,
  envRemoveCommand,
  envGcCommand,
  envShowCommand,
  swarmKeyCommand,
  attestCommand,
  fetchCommand,
  releaseCommand,
  watchAddCommand,
  watchListCommand,
  watchRemoveCommand,
  webhookAddCommand,
  webhookListCommand,
  webhookRemoveCommand
] as unknown as readonly Command[]
