import type { Command } from '../command.js'
import { attestCommand } from './attest.js'
import { fetchCommand, releaseCommand } from './fetch.js'
import { watchAddCommand, watchListCommand, watchRemoveCommand } from './watch.js'
import { auditCommand } from './audit.js'
import { cancelCommand } from './cancel.js'
import { demoCommand } from './demo.js'
import { initCommand } from './init.js'
import { jobsCommand } from './jobs.js'
import { joinCommand } from './join.js'
import { logExportCommand } from './log-export.js'
import { peersCommand } from './peers.js'
import { statusCommand } from './status.js'
import { submitCommand } from './submit.js'
import { verifyCommand } from './verify.js'
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
  logExportCommand,
  auditCommand,
  verifyCommand,
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
