#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/ into dist/ by `npm run build` (run by `npm ci`).
import { tuneHeapFor } from '../dist/src/node/cli/heap.js'

// Before the CLI's modules load: V8 heap settings for a long-running node (src/node/cli/heap.ts).
tuneHeapFor(process.argv.slice(2))
const { main } = await import('../dist/src/node/cli/main.js')
process.exitCode = await main(process.argv.slice(2))
