import { setFlagsFromString } from 'node:v8'

/** Commands that keep running as a node (for months), rather than doing one thing and exiting. */
const NODE_COMMANDS = new Set(['join', 'demo'])

/** V8 options about the young generation that a user may pass themselves (then left alone). */
const OWN_CHOICE = /^--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor)\b/

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
