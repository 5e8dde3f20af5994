// The node's bundle, run by `npm run build` after `tsc` has compiled src/
// into dist/src/: esbuild joins the CLI and every module it imports (ours and
// the dependencies') into minified ESM files in dist/bundle/, which
// bin/buildhaus-node.js runs. Why: a long-running node loaded ~1,400
// modules, and V8 keeps each module's source, scope and records for the life
// of the process; bundled, an idle node holds ~16 MB less (docs/ARCHITECTURE.md,
// "Decisions"; BENCHMARKS.md, "The bundled node, 2026-12-06").
import { build } from 'esbuild'
import { readFileSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
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

/**
 * libp2p's peer store sorts addresses, protocols and metadata keys, and its
 * peer records compare address lists, with `localeCompare`, only to have an
 * order. The first call builds ICU's collator, which reads the table of
 * every locale's collation: ~2.4 MB of the binary's data resident in every
 * node for good (BENCHMARKS.md, "The bundled node, 2026-12-06"). In these
 * files, and only these, a comparison by code units takes its place: as
 * total and as stable an order, and the same one for these ASCII strings on
 * every node. A file where the expected calls are no longer found stops the
 * build, so that an upgrade of libp2p is looked at again.
 */
const ORDINAL_COMPARE = [
  /@libp2p\/peer-store\/dist\/src\/utils\/dedupe-addresses\.js$/,
  /@libp2p\/peer-store\/dist\/src\/utils\/to-peer-pb\.js$/,
  /@libp2p\/peer-record\/dist\/src\/peer-record\/utils\.js$/
]
/** `X.localeCompare(Y)` where X and Y are names, property paths or such a path's call without arguments. */
const LOCALE_COMPARE = /([\w.]+(?:\(\))?)\.localeCompare\(([\w.]+(?:\(\))?)\)/g
const ordinalCompare = {
  name: 'ordinal-compare',
  setup (builder) {
    const seen = new Set()
    builder.onLoad({ filter: /@libp2p\/peer-(store|record)\/dist\/src\/.*\.js$/ }, async (args) => {
      const rule = ORDINAL_COMPARE.find((pattern) => pattern.test(args.path))
      if (rule === undefined) return undefined
      seen.add(rule)
      const source = await readFile(args.path, 'utf8')
      let replaced = 0
      const contents = source.replace(LOCALE_COMPARE, (_, a, b) => { replaced++; return `__ordinalCompare(${a}, ${b})` })
      if (replaced === 0 || contents.includes('localeCompare')) throw new Error(`scripts/bundle.js: ${args.path} no longer calls localeCompare as expected: look at it again (ORDINAL_COMPARE)`)
      return { contents: `const __ordinalCompare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);\n${contents}`, loader: 'js' }
    })
    builder.onEnd((result) => {
      if (result.errors.length === 0 && seen.size !== ORDINAL_COMPARE.length) throw new Error(`scripts/bundle.js: not every file of ORDINAL_COMPARE was bundled: ${ORDINAL_COMPARE.filter((p) => !seen.has(p)).join(', ')}`)
    })
  }
}

await rm(outdir, { recursive: true, force: true })
await build({
  absWorkingDir: root,
  entryPoints: {
    main: 'dist/src/node/cli/main.js',
    // verify-pool starts its worker from `./verify-worker.js` beside the module that holds it.
    'verify-worker': 'dist/src/ledger/verify-worker.js',
    // The sandbox's spawn helper, a process of its own started from `./spawn-helper-main.js` beside its client.
    'spawn-helper-main': 'dist/src/sandbox/spawn-helper-main.js',
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
  plugins: [ordinalCompare],
  logLevel: 'warning'
})
