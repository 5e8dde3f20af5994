import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { LedgerStore } from '../../src/ledger/store.js'
import { homePaths } from '../../src/node/home/home.js'
import { runCli } from '../helpers/cluster.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { codec, World } from '../jobs/helpers.js'

/** `log export` with no node running in the home reads the home's log itself (its store is loaded only then). */
describe('log export without a running node', () => {
  const teardown = useTeardown()

  it('exports a stopped node\'s log from its store, every line as held, and says how many', async () => {
    const home = await tempDir(teardown)
    await mkdir(home, { recursive: true, mode: 0o700 })
    const world = new World()
    const [submitter, builder] = [world.author(), world.author()]
    const job = submitter.job()
    const entries = [job, builder.claim(job), builder.result(job)]
    const store = await LedgerStore.open({ path: homePaths(home).ledger, codec })
    await store.ingest(entries)
    const held: string[] = []
    for await (const line of store.exportLines()) held.push(line)
    await store.close()
    expect(held).toHaveLength(3)

    const output = join(home, 'log.ndjson')
    const exported = await runCli(['log', 'export', '--home', home, '-o', output])
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stderr).toBe(`exported 3 entries to ${output}\n`)
    expect((await readFile(output, 'utf8')).split('\n')).toEqual([...held, ''])
  })
})
