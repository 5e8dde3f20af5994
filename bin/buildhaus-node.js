#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/ into dist/ and bundled into dist/bundle/ by `npm run build` (run by `npm ci`).
// libp2p 3 needs Node.js 22: say so in one sentence instead of failing deep inside it.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`buildhaus-node needs Node.js 22 or later, and this is Node.js ${process.versions.node}: in a clone of the repository, run it as \`npx buildhaus-node …\` (npx and npm scripts use the Node.js 22 that \`npm ci\` installed with the dev dependencies); elsewhere, install Node.js 22.\n`)
  process.exitCode = 1
} else {
  // Before the CLI's modules load: V8 heap settings for a long-running node (src/node/cli/heap.ts),
  // the options only a fresh start takes (then Node starts again with them, in the same process),
  // and for a one-shot command, the compiled code kept on disk.
  const { enableCompileCacheFor, relaunchOptionsFor, tuneHeapFor } = await import('../dist/src/node/cli/heap.js')
  const relaunch = relaunchOptionsFor(process.argv.slice(2))
  if (relaunch.length > 0 && typeof process.execve === 'function') process.execve(process.execPath, [process.execPath, ...relaunch, ...process.execArgv, ...process.argv.slice(1)], process.env)
  tuneHeapFor(process.argv.slice(2))
  enableCompileCacheFor(process.argv.slice(2))
  // The CLI bundled by `npm run build` (scripts/bundle.js): a few files instead of ~1,400 modules.
  const bundle = new URL('../dist/bundle/main.js', import.meta.url)
  const { existsSync } = await import('node:fs')
  if (existsSync(bundle)) {
    const { main } = await import(bundle.href)
    process.exitCode = await main(process.argv.slice(2))
  } else {
    process.stderr.write('buildhaus-node is not built (no dist/bundle/main.js): run `npm run build` in the repository (`npm ci` runs it)\n')
    process.exitCode = 1
  }
}
