import { Level } from 'level'

type Teardown = (fn: () => unknown) => void

/**
 * A real LevelDB open in this process, as a node holds its ledger: LevelDB
 * opens its files without close-on-exec, so anything this process starts
 * inherits them unless something closes them. For tests that a child (a
 * sandboxed step, a tool) cannot write into the node's files.
 */
export async function openLedgerFiles (teardown: Teardown, dir: string): Promise<{ intact: () => Promise<boolean> }> {
  const db = new Level<string, string>(dir)
  await db.open()
  await db.put('entry', 'intact')
  teardown(async () => { await db.close() })
  return {
    /** Whether the entry written at the start reads back unchanged after a reopen (which replays the log). */
    intact: async () => {
      await db.close()
      await db.open()
      return await db.get('entry') === 'intact'
    }
  }
}
