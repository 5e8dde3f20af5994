import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DIRECT_REMOVE_ENTRIES, removeSmallTree, removeTreeAtAnyDepth } from '../../src/sandbox/tree-walk.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()

/** A workspace-like tree beside a directory that must survive its removal. */
async function tree (): Promise<{ root: string, outside: string }> {
  const base = await tempDir(teardown, 'buildhaus-remove-')
  const root = join(base, 'run')
  const outside = join(base, 'outside')
  await mkdir(join(root, 'build', 'src', 'deep'), { recursive: true })
  await mkdir(outside)
  await writeFile(join(outside, 'keep'), 'kept')
  await writeFile(join(root, 'build', 'src', 'deep', 'a.c'), 'int main(void) { return 0; }\n')
  await writeFile(join(root, 'build', 'hello'), 'x', { mode: 0o000 })
  // Links out of the tree, to a file and to a directory: removed as links, never followed.
  await symlink(join(outside, 'keep'), join(root, 'build', 'to-file'))
  await symlink(outside, join(root, 'build', 'to-dir'))
  return { root, outside }
}

describe('removing a run\'s small tree with direct system calls', () => {
  it('removes everything under the root, links as links, and nothing they point to', async () => {
    const { root, outside } = await tree()
    expect(removeSmallTree(root)).toBe(true)
    expect(existsSync(root)).toBe(false)
    expect(await readFile(join(outside, 'keep'), 'utf8')).toBe('kept')
  })

  it('leaves a tree past its budget, or one it cannot read, to the removal that handles any tree', async () => {
    const big = await tree()
    await mkdir(join(big.root, 'many'))
    for (let i = 0; i < DIRECT_REMOVE_ENTRIES; i++) await writeFile(join(big.root, 'many', `f${i}`), '')
    expect(removeSmallTree(big.root)).toBe(false)
    await removeTreeAtAnyDepth(big.root)
    expect(existsSync(big.root)).toBe(false)
    expect(await readFile(join(big.outside, 'keep'), 'utf8')).toBe('kept')

    // A directory a build locked up (mode 000): root reads it anyway; anyone else falls back.
    const locked = await tree()
    await chmod(join(locked.root, 'build', 'src'), 0o000)
    removeSmallTree(locked.root)
    await removeTreeAtAnyDepth(locked.root)
    expect(existsSync(locked.root)).toBe(false)
    expect(await readFile(join(locked.outside, 'keep'), 'utf8')).toBe('kept')
  })

  it('says false for a root that is not there, and the full removal accepts that', async () => {
    const base = await tempDir(teardown, 'buildhaus-remove-')
    expect(removeSmallTree(join(base, 'gone'))).toBe(false)
    await removeTreeAtAnyDepth(join(base, 'gone'))
  })
})
