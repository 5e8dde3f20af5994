import type { Command } from '../command.js'

/**
 * Every CLI command, one module each. Add a command by writing its module and
 * listing it here.
 */
export const commands: readonly Command[] = [
] as unknown as readonly Command[]
