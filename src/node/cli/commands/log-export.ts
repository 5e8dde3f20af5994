import { createWriteStream, existsSync } from 'node:fs'
import { once } from 'node:events'
import { EntryCodec } from '../../../ledger/entry.js'
import { LedgerStore, writeExport } from '../../../ledger/index.js'
import { jobEntryRules } from '../../../jobs/index.js'
import { EnvironmentError, UsageError } from '../../../util/errors.js'
import { connectFromOptions } from '../client.js'
import { NodeNotRunningError } from '../../errors.js'
import { homePaths, resolveHome } from '../../home/home.js'
import { defineCommand } from '../command.js'
import { logExportSpec } from '../specs.js'

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
    try {
      const client = await connectFromOptions(options, io.env)
      for await (const line of client.stream('/api/log', { signal: io.signal })) {
        if (line === '') continue
        if (!out.write(`${line}\n`)) await once(out as NodeJS.EventEmitter, 'drain')
        lines++
      }
    } catch (err) {
      // No node running in the home: read its store directly (LevelDB's lock says if one is).
      if (!(err instanceof NodeNotRunningError) || options.api !== undefined) throw err
      const home = resolveHome(options.home, io.env)
      if (!existsSync(homePaths(home).ledger)) throw err
      let store: LedgerStore
      try {
        store = await LedgerStore.open({ path: homePaths(home).ledger, codec: new EntryCodec(jobEntryRules) })
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
