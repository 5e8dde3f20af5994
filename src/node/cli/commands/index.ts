import type { Command } from '../command.js'
import { auditCommand } from './audit.js'
import { cancelCommand } from './cancel.js'
import { demoCommand } from './demo.js'
import { envCreateCommand, envGcCommand, envImportCommand, envListCommand, envRemoveCommand, envShowCommand } from './env.js'
import { initCommand } from './init.js'
import { jobsCommand } from './jobs.js'
import { joinCommand } from './join.js'
import { logExportCommand } from './log-export.js'
import { peersCommand } from './peers.js'
import { statusCommand } from './status.js'
import { submitCommand } from './submit.js'
import { verifyCommand } from './verify.js'

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
  envListCommand,
  envCreateCommand,
  envImportCommand,
  envRemoveCommand,
  envGcCommand,
  envShowCommand
] as unknown as readonly Command[]
