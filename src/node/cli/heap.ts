import * as nodeModule from 'node:module'
import { mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'

/** Commands that keep running as a node (for months), rather than doing one thing and exiting. */
const NODE_COMMANDS = new Set(['join', 'demo'])

/** V8 options about the young generation that a user may pass themselves (then left alone). */
const OWN_CHOICE = /^--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor)\b/

/** Node options that only take effect at start (not through setFlagsFromString), and the user's own choice of them. */
const POOL_OPTION = '--v8-pool-size=1'
const POOL_OWN_CHOICE = /^--v8-pool-size\b/
/** Options under which a second start would surprise: a debugger attached to the first process. */
const NO_RELAUNCH = /^--(inspect|debug)/

/**
 * The Node options a node command wants that can only be given at start, so
 * that bin/ starts Node again with them (process.execve: the same process
 * id, nothing loaded yet but bin/ and this file); empty when there are none
 * to add. One: `--v8-pool-size=1`. Node starts 4 V8 worker threads by
 * default (concurrent compilation and GC helpers), and each keeps a malloc
 * arena with what it allocated: an idle node held ~9 MB less RSS with one
 * (bench/idle.ts, BENCHMARKS.md "after the memory work"), and a node has no
 * use for more parallel V8 work than this 2-core class of machine gives it.
 * A user's own `--v8-pool-size` wins, and a debugged process is left alone.
 */
export function relaunchOptionsFor (argv: readonly string[], execArgv: readonly string[] = process.execArgv): string[] {
  if (!NODE_COMMANDS.has(argv[0] ?? '') || execArgv.some((arg) => POOL_OWN_CHOICE.test(arg) || NO_RELAUNCH.test(arg))) return []
  return [POOL_OPTION]
}

/**
 * Keep a node's young generation small. V8 starts it at 1 MB per semi-space
 * and grows it to 16 MB (33 MB resident, never given back) as soon as a burst
 * of allocation comes, which for a node is loading its ~860 modules at start:
 * an idle node then held 33 MB of empty nursery, a fifth of its RSS. With
 * growth off the nursery stays at ~4 MB resident; the cost is more frequent
 * (and as cheap: they copy only survivors) scavenges, measured in
 * BENCHMARKS.md. Must run before the node's modules load (bin/ imports this
 * first), and only for the node commands: one-shot commands such as `audit`
 * allocate hard for a few seconds and are better served by the default.
 * A Node option of the user's own (e.g. `--max-semi-space-size`) wins.
 */
export function tuneHeapFor (argv: readonly string[], execArgv: readonly string[] = process.execArgv): boolean {
  if (!NODE_COMMANDS.has(argv[0] ?? '') || execArgv.some((arg) => OWN_CHOICE.test(arg))) return false
  setFlagsFromString('--semi-space-growth-factor=1')
  return true
}

/**
 * Keep V8's compiled code of the CLI on disk for the one-shot commands
 * (`status`, `submit`, `audit`…): each starts by loading the whole bundle,
 * and with the cache it compiles none of it again (`--version` 355 → 285 ms
 * on the 2-core bench machine, BENCHMARKS.md). In the user's own cache
 * directory, never a shared /tmp: code read from a cache another user can
 * write would run as this one. A node (`join`) is left alone: it starts
 * once, and code compiled ahead of need would stay in its memory. Node's own
 * NODE_COMPILE_CACHE, when set, wins. Returns the directory, if enabled.
 */
export function enableCompileCacheFor (argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (NODE_COMMANDS.has(argv[0] ?? '') || env.NODE_COMPILE_CACHE !== undefined || env.NODE_DISABLE_COMPILE_CACHE !== undefined) return undefined
  const cacheHome = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  const dir = makeDirsUnder(cacheHome, ['buildhaus', 'node-compile-cache'])
  if (dir === undefined) return undefined
  // Node 22.0 has no compile cache (engines says >=22): it then starts as it did.
  if (typeof nodeModule.enableCompileCache !== 'function') return undefined
  // A failure (a read-only home: status FAILED, with a message) leaves the cache off, and Node compiles as usual.
  const { status } = nodeModule.enableCompileCache(dir)
  const { ENABLED, ALREADY_ENABLED } = nodeModule.constants.compileCacheStatus
  return status === ENABLED || status === ALREADY_ENABLED ? dir : undefined
}

/**
 * `base/a/b`, each level made if missing, one at a time (base too, if its
 * parent exists), or undefined if that cannot be. Not a recursive mkdir
 * (Node's own, inside enableCompileCache, included): where the kernel
 * answers ENOENT for a parent that exists, as under /proc, that loops for
 * ever, and a command given such an XDG_CACHE_HOME hung before it printed
 * anything.
 */
function makeDirsUnder (base: string, parts: readonly string[]): string | undefined {
  const levels = parts.reduce((made, part) => [...made, join(made.at(-1)!, part)], [base])
  for (const dir of levels) {
    try {
      mkdirSync(dir, { mode: 0o700 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return undefined
    }
  }
  return levels.at(-1)
}
