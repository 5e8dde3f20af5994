import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from '../../util/errors.js'
import type { Command, OptionTable, OptionValues } from './command.js'

export interface ParsedCommandLine {
  command: Command
  values: OptionValues<OptionTable>
  positionals: string[]
}

export type HelpRequest = { help: true, command?: Command } | { version: true }

/**
 * Pure: argv (without `node` and the script) → the command to run and its
 * typed options. Throws UsageError saying what was received and what to do.
 */
export function parseCommandLine (argv: string[], commands: readonly Command[]): ParsedCommandLine | HelpRequest {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    const topic = argv[0] === 'help' ? findCommand(argv.slice(1), commands) : undefined
    return topic !== undefined ? { help: true, command: topic.command } : { help: true }
  }
  if (argv[0] === '--version' || argv[0] === '-v') return { version: true }
  const found = findCommand(argv, commands)
  if (found === undefined) {
    const names = commands.map((c) => c.name.join(' ')).join(', ')
    throw new UsageError(`unknown command "${argv[0]}"; the commands are: ${names} (try \`buildhaus-node --help\`)`)
  }
  const { command, rest } = found
  if (rest.includes('--help') || rest.includes('-h')) return { help: true, command }

  const config: ParseArgsConfig = {
    args: rest,
    options: Object.fromEntries(Object.entries(command.options).map(([name, spec]) => [name, {
      type: spec.type,
      ...(spec.multiple === true ? { multiple: true } : {}),
      ...(spec.short !== undefined ? { short: spec.short } : {}),
      ...(spec.default !== undefined ? { default: spec.default } : {})
    }])),
    strict: true,
    allowPositionals: true,
    allowNegative: true
  }
  let parsed
  try {
    parsed = parseArgs(config)
  } catch (err) {
    throw new UsageError(`${describeParseError((err as Error).message)} (see \`buildhaus-node ${command.name.join(' ')} --help\`)`)
  }
  const { min, max } = command.positionals ?? { min: 0, max: 0 }
  if (parsed.positionals.length < min) {
    throw new UsageError(`\`${command.name.join(' ')}\` needs ${command.args ?? 'an argument'} (see \`buildhaus-node ${command.name.join(' ')} --help\`)`)
  }
  if (parsed.positionals.length > max) {
    const extra = parsed.positionals.slice(max).join(' ')
    throw new UsageError(`\`${command.name.join(' ')}\` got an unexpected argument "${extra}" (see \`buildhaus-node ${command.name.join(' ')} --help\`)`)
  }
  for (const [name, spec] of Object.entries(command.options)) {
    // node:util accepts --no-X for every option once allowNegative is on; only booleans that default to true mean it.
    if (spec.type === 'boolean' && spec.default !== true && rest.includes(`--no-${name}`)) {
      throw new UsageError(`--no-${name} is not an option of \`${command.name.join(' ')}\` (${name} is off unless you pass --${name})`)
    }
  }
  const values = { ...parsed.values } as Record<string, unknown>
  for (const [name, spec] of Object.entries(command.options)) {
    if (spec.type === 'boolean' && values[name] === undefined) values[name] = false
    if (spec.multiple === true && values[name] === undefined) values[name] = []
  }
  return { command, values: values as OptionValues<OptionTable>, positionals: parsed.positionals }
}

/** node:util's parse errors span several lines; keep one sentence, and say how to pass a value that starts with a dash. */
function describeParseError (message: string): string {
  const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(message)
  if (ambiguous !== null) return `${ambiguous[1]!} needs a value, and the next word starts with "-"; if that is the value, write ${ambiguous[1]!}=VALUE`
  return (message.split('\n')[0] ?? message).replace(/\. To specify.*$/, '').replace(/\.$/, '')
}

function findCommand (argv: string[], commands: readonly Command[]): { command: Command, rest: string[] } | undefined {
  // Longest name first, so `log export` wins over a hypothetical `log`.
  const sorted = [...commands].sort((a, b) => b.name.length - a.name.length)
  for (const command of sorted) {
    if (command.name.every((word, i) => argv[i] === word)) return { command, rest: argv.slice(command.name.length) }
  }
  return undefined
}

/** Help text generated from the option tables. */
export function formatHelp (commands: readonly Command[], command?: Command): string {
  if (command === undefined) {
    const width = Math.max(...commands.map((c) => c.name.join(' ').length))
    const lines = commands.map((c) => `  ${c.name.join(' ').padEnd(width)}  ${c.summary}`)
    return `Usage: buildhaus-node <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`buildhaus-node <command> --help\` for a command's options.\n`
  }
  const rows = Object.entries(command.options).map(([name, spec]) => {
    const flag = spec.type === 'boolean'
      ? (spec.default === true ? `--no-${name}` : `--${name}`)
      : `--${name} ${spec.placeholder ?? 'VALUE'}`
    const short = spec.short !== undefined ? `-${spec.short}, ` : '    '
    const repeat = spec.multiple === true ? ' (repeatable)' : ''
    return [`${short}${flag}`, `${spec.description}${repeat}`] as const
  })
  const width = Math.max(0, ...rows.map(([flag]) => flag.length))
  const options = rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`).join('\n')
  const usage = `buildhaus-node ${command.name.join(' ')}${command.args !== undefined ? ` ${command.args}` : ''} [options]`
  const details = command.details !== undefined ? `\n${command.details}\n` : ''
  return `Usage: ${usage}\n\n${command.summary}\n${details}${options.length > 0 ? `\nOptions:\n${options}\n` : ''}`
}
