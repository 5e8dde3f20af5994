import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { packDirectory } from '../../src/archive/index.js'
import { readJobSpec } from '../../src/jobs/index.js'
import { buildNodeConfig } from '../../src/node/config.js'
import { startNode, type RunningNode } from '../../src/node/daemon.js'
import { tempJobDir } from '../helpers/job-dir.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { testMesh } from '../helpers/test-mesh.js'

/**
 * A node keeps the source of each job it submitted pinned until the job is
 * decided, so that builders can still fetch it. An author often submits one
 * source several times (a rerun, another platform, the same tarball again):
 * the first of those jobs to be decided must not unpin a source that the
 * others still need, and a submit racing the unpin of the job before it must
 * end pinned.
 */
describe('the sources of a node\'s own jobs', () => {
  const teardown = useTeardown()

  it('stay pinned while any undecided job of the node uses them, across a restart too', async () => {
    const home = await tempDir(teardown, 'buildhaus-source-pins-')
    await testMesh().keyFor(home)
    const config = buildNodeConfig({
      home, mesh: testMesh().file, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, platform: ['linux-x64'], slots: '0', api: '127.0.0.1:0', sandbox: 'none'
    }, {})
    const start = async (): Promise<RunningNode> => {
      const node = await startNode(config, { ownChainTimeoutMs: 0, writeApiFile: false, warn: () => {} })
      teardown(async () => { await node.stop() })
      return node
    }
    let node = await start()
    const dir = await tempJobDir(teardown, { name: 'pinned', steps: [{ name: 'build', run: 'true' }] }, { 'data.txt': 'one source, several jobs\n' })
    const spec = await readJobSpec(dir)
    const source = await node.blobs.put((await packDirectory(dir)).bytes)
    const marker = join(node.blobs.dir, 'pins', source.hash)
    // Jobs nobody builds: each is decided by its cancel alone.
    const submit = async (): Promise<string> => (await node.jobs.submit({ spec, overrides: { platforms: ['nowhere-x64'] }, source })).id
    const cancel = async (id: string): Promise<void> => {
      await node.jobs.cancel(id)
      expect(node.jobs.get(id)?.verdict).toBe('cancelled')
    }
    // The store flips a blob's pin at the call, so what it says right after a cancel is final.
    const pinned = async (): Promise<boolean | undefined> => (await node.blobs.stat(source.hash))?.pinned

    const first = await submit()
    const second = await submit()
    expect(await pinned()).toBe(true)
    await cancel(first)
    expect(await pinned()).toBe(true)

    // The last job of the source decided while a new one is being submitted: the new one keeps it.
    const [, third] = await Promise.all([cancel(second), submit()])
    expect(await pinned()).toBe(true)
    // Kept in memory: no marker made and removed for every job (the log says what to pin after a restart).
    expect(existsSync(marker)).toBe(false)

    // After a restart, the job still open from before holds the source again.
    await node.stop()
    node = await start()
    expect(await pinned()).toBe(true)
    await cancel(await submit())
    expect(await pinned()).toBe(true)

    await cancel(third)
    expect(await pinned()).toBe(false)
  })
})
