import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { access } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKeyFile } from '../../src/crypto/key-file.js'
import { generateNodeKey, type NodeKey } from '../../src/crypto/keys.js'
import { formatMeshDefinition, MESH_FILE_VERSION } from '../../src/membership/index.js'
import { ensureHome } from '../../src/node/home.js'

/**
 * The mesh every test node joins by default, so that the suite runs in the
 * default trust mode (only members' claims and results count): a mesh file
 * whose founders are a pool of keys made up front, one handed to each new
 * node home. A node started with `stranger: true` makes its own key instead
 * and joins the same mesh as a non-member (until vouched for).
 *
 * One mesh per test file (each file runs in its own process); the pool's
 * keys that no node takes are founders nobody uses, which changes nothing.
 */
export interface TestMesh {
  /** The mesh definition file (`join --mesh FILE`). */
  file: string
  /** Every founder key, in pool order. */
  founders: readonly string[]
  /** Give `home` the next founder key, unless it has a key already; returns the key (hex) when it gave one. */
  keyFor (home: string): Promise<string | undefined>
  /** Take the next founder key for the test's own use (e.g. a member gone bad, played by a hostile peer). */
  takeKey (): NodeKey
}

/** Founders in the pool: more than any test file starts nodes (the soak cluster has its own). */
export const TEST_MESH_FOUNDERS = 64

let shared: TestMesh | undefined

export function testMesh (): TestMesh {
  if (shared !== undefined) return shared
  const dir = mkdtempSync(join(tmpdir(), 'buildhaus-test-mesh-'))
  process.once('exit', () => { rmSync(dir, { recursive: true, force: true }) })
  const keys: NodeKey[] = Array.from({ length: TEST_MESH_FOUNDERS }, () => generateNodeKey())
  const file = join(dir, 'mesh.json')
  writeFileSync(file, formatMeshDefinition({ v: MESH_FILE_VERSION, name: 'test', founders: keys.map((k) => k.publicHex), admit: 2 }))
  let next = 0
  const take = (): NodeKey => {
    const key = keys[next++]
    if (key === undefined) throw new Error(`the test mesh's ${TEST_MESH_FOUNDERS} founder keys are all taken; raise TEST_MESH_FOUNDERS`)
    return key
  }
  shared = {
    file,
    founders: keys.map((k) => k.publicHex),
    async keyFor (home) {
      const paths = await ensureHome(home)
      if (await access(paths.key).then(() => true, () => false)) return undefined
      const key = take()
      await createKeyFile(paths.key, key)
      return key.publicHex
    },
    takeKey: take
  }
  return shared
}
