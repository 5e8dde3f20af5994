import type { Command } from '../command.js'
import { initCommand } from './init.js'
import { joinCommand } from './join.js'
import { peersCommand } from './peers.js'

/**
 * Every CLI command, one module each. Add a command by writing its module and
 * listing it here.
 */
export const commands: readonly Command[] = [
  initCommand,
  joinCommand,
  peersCommand
] as unknown as readonly Command[]
