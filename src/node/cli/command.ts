import type { Writable } from 'node:stream'

/** One option of a command, in the one table that parsing, help and docs all read. */
export interface OptionSpec {
  type: 'string' | 'boolean'
  /** Repeatable (`--bootstrap A --bootstrap B`): the value is an array. */
  multiple?: boolean
  short?: string
  /** Booleans that default to on accept `--no-NAME`. */
  default?: string | boolean | string[]
  /** Shown in help as `--name PLACEHOLDER`. */
  placeholder?: string
  description: string
}

export type OptionTable = Record<string, OptionSpec>

/** Parsed values typed against the option table. */
export type OptionValues<T extends OptionTable> = {
  [K in keyof T]: T[K]['type'] extends 'boolean'
    ? boolean
    : T[K]['multiple'] extends true ? string[] : (T[K]['default'] extends string ? string : string | undefined)
}

/** Where a command writes, so tests can run commands in-process and read what they printed. */
export interface CliIO {
  stdout: Pick<Writable, 'write'>
  stderr: Pick<Writable, 'write'>
  env: NodeJS.ProcessEnv
  /** Aborted on SIGINT/SIGTERM; long-running commands stop cleanly when it fires. */
  signal: AbortSignal
}

export interface Command<T extends OptionTable = OptionTable> {
  /** Words that select the command: `['log', 'export']`. */
  name: string[]
  summary: string
  /** More than the one-line summary, shown by `<command> --help` only (e.g. the exit codes). */
  details?: string
  /** Positional arguments, for help: e.g. `[DIR]`, `FILE`. */
  args?: string
  /** How many positionals are accepted. */
  positionals?: { min: number, max: number }
  options: T
  /** Resolves to the process exit code. */
  run (options: OptionValues<T>, positionals: string[], io: CliIO): Promise<number>
}

/**
 * What the CLI knows of a command without loading its code: everything but
 * `run`. Parsing and help read only this (src/node/cli/specs.ts).
 */
export type CommandSpec<T extends OptionTable = OptionTable> = Omit<Command<T>, 'run'>

/** Helper that keeps the option table's literal types for `run`. */
export function defineCommand<T extends OptionTable> (command: Command<T>): Command<T> {
  return command
}

/** Helper that keeps the option table's literal types, for the command's module to spread into its `defineCommand`. */
export function defineSpec<T extends OptionTable> (spec: CommandSpec<T>): CommandSpec<T> {
  return spec
}

/**
 * A command whose module (and all it imports: libp2p, LevelDB, the
 * sandbox…) is loaded only when it runs, so that the others, `--help` and
 * `--version` start without it. `load` is the module's dynamic `import()`.
 */
export function lazyCommand<T extends OptionTable> (spec: CommandSpec<T>, load: () => Promise<Command<T>>): Command<T> {
  return {
    ...spec,
    async run (options, positionals, io) {
      return await (await load()).run(options, positionals, io)
    }
  }
}

/** Options nearly every command shares; spread them into a command's table. */
export const homeOption = {
  home: { type: 'string', placeholder: 'DIR', description: 'node home (default: $BUILDHAUS_HOME, else the per-user data dir)' }
} as const satisfies OptionTable

export const apiOption = {
  api: { type: 'string', placeholder: 'URL', description: 'talk to the node whose API is at URL (default: the node running in --home)' }
} as const satisfies OptionTable

export const jsonOption = {
  json: { type: 'boolean', description: 'print machine-readable JSON instead of text' }
} as const satisfies OptionTable
