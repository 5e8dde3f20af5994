// The node's bundle, run by `npm run build` after `tsc` has compiled src/
// into dist/src/: esbuild joins the CLI and every module it imports (ours and
// the dependencies') into minified ESM files in dist/bundle/, which
// bin/buildhaus-node.js runs. Why: a long-running node loaded ~1,400
// modules, and V8 keeps each module's source, scope and records for the life
// of the process; bundled, an idle node holds ~16 MB less (docs/ARCHITECTURE.md,
// "decisions"; BENCHMARKS.md, "2026-12-06, the bundled node").
import { build } from 'esbuild'
import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const outdir = `${root}dist/bundle`

/** Loaded by Node from node_modules as usual, not bundled. */
const external = [
  // A native addon, found by node-gyp-build from its own folder.
  'classic-level',
  // UPnP (opt-in, loaded at first use): ssdp reads its package.json relative to its own file.
  '@libp2p/upnp-nat', '@achingbrain/nat-port-mapper', '@achingbrain/ssdp'
]

/**
 * An entry per dependency, besides the CLI's, only to split the code into
 * files of a few hundred kB: esbuild puts the code that the same entries
 * reach into one file. One file of 2.5 MB made V8 parse it in one piece,
 * with ~18 MB of parser memory at once, which malloc kept after V8 freed it
 * (an idle node then held as much as before bundling). Nothing imports these
 * entries' own files (`dep-*.js`); the CLI's imports go to the shared files.
 */
const { dependencies } = JSON.parse(readFileSync(`${root}package.json`, 'utf8'))
const splitters = Object.fromEntries(Object.keys(dependencies)
  .filter((name) => !external.includes(name))
  .map((name) => [`dep-${name.replace(/^@/, '').replace(/\//g, '-')}`, name]))

await rm(outdir, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: {
    main: 'dist/src/node/cli/main.js',
    // verify-pool starts its worker from `./verify-worker.js` beside the module that holds it.
    'verify-worker': 'dist/src/ledger/verify-worker.js',
    ...splitters
  },
  outdir,
  bundle: true,
  // Shared code and the parts loaded at first use (src/util/lazy.ts: each
  // dynamic import()) are files of their own, all in one folder, so that a
  // URL relative to a module resolves the same from every file.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node22',
  minify: true,
  // Maps back to src/ (through tsc's maps): an unexpected error's stack is
  // printed in the sources' terms (src/util/source-stack.ts).
  sourcemap: 'linked',
  // Every character outside ASCII escaped: V8 keeps a source with any such
  // character at two bytes a character, the whole file.
  charset: 'ascii',
  external,
  // CommonJS dependencies inside an ESM bundle call require() for Node's
  // built-in modules: give them one.
  banner: { js: 'import { createRequire as __bundleRequire } from \'node:module\'; const require = __bundleRequire(import.meta.url);' },
  legalComments: 'linked',
  logLevel: 'warning'
})
