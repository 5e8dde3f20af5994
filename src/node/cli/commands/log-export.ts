import { createWriteStream, existsSync } from 'node:fs'
import { once } from 'node:events'
import type { LedgerStore } from '../../../ledger/store.js'
import { EnvironmentError, UsageError } from '../../../util/errors.js'
import { connectFromOptions } from '../client.js'
import { NodeNotRunningError } from '../../errors.js'
import { homePaths, resolveHome } from '../../home/home.js'
import { defineCommand } from '../command.js'
import { logExportSpec } from '../specs.js'

/** How often, in entries and at most in time, an export into a file says how far it is. */
const PROGRESS_LINES = 4096
const PROGRESS_EVERY_MS = 2_000

export const logExportCommand = defineCommand({
  ...logExportSpec,
  async run (options, _positionals, io) {
    const out = options.output !== undefined ? createWriteStream(options.output, { flags: 'wx' }) : io.stdout as NodeJS.WritableStream
    if (options.output !== undefined) {
      await Promise.race([once(out as NodeJS.EventEmitter, 'open'), once(out as NodeJS.EventEmitter, 'error').then(([err]) => {
        throw new UsageError(`cannot write ${options.output}: ${(err as Error).message} (the file must not exist yet)`)
      })])
    }
    let lines = 0
    // Into a file, a long export says how far it is (stdout may be the export itself).
    const started = performance.now()
    let told = started
    const progress = (): void => {
      const now = performance.now()
      if (options.output === undefined || now - told < PROGRESS_EVERY_MS) return
      told = now
      io.stderr.write(`log export: ${lines.toLocaleString('en-US')} entries so far (${Math.round(lines / ((now - started) / 1000)).toLocaleString('en-US')} a second)\n`)
    }
    try {
      const client = await connectFromOptions(options, io.env)
      for await (const line of client.stream('/api/log', { signal: io.signal })) {
        if (line === '') continue
        if (!out.write(`${line}\n`)) await once(out as NodeJS.EventEmitter, 'drain')
        if (++lines % PROGRESS_LINES === 0) progress()
      }
    } catch (err) {
      // No node running in the home: read its store directly (LevelDB's lock says if one is).
      if (!(err instanceof NodeNotRunningError) || options.api !== undefined) throw err
      const home = resolveHome(options.home, io.env)
      if (!existsSync(homePaths(home).ledger)) throw err
      // Only now: the store, LevelDB and the job rules are a node's, and a command asking a running node needs none of them.
      const [{ EntryCodec }, { LedgerStore: Store }, { writeExport }, { jobEntryRules }] = await Promise.all([
        import('../../../ledger/entry.js'), import('../../../ledger/store.js'), import('../../../ledger/export.js'), import('../../../jobs/bodies.js')
      ])
      let store: LedgerStore
      try {
        store = await Store.open({ path: homePaths(home).ledger, codec: new EntryCodec(jobEntryRules) })
      } catch (openErr) {
        throw new EnvironmentError(`no node answers for ${home} and its log cannot be opened (${(openErr as Error).message})`)
      }
      try {
        lines = (await writeExport(store, out as never)).lines
      } finally {
        await store.close()
      }
    }
    if (options.output !== undefined) {
      out.end()
      await once(out as NodeJS.EventEmitter, 'finish')
      io.stderr.write(`exported ${lines} entries to ${options.output}\n`)
    }
    return 0
  }
})
