#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/ into dist/ by `npm run build` (run by `npm ci`).
import { main } from '../dist/src/node/cli/main.js'

process.exitCode = await main(process.argv.slice(2))
