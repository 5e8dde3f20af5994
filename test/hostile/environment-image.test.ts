import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ImageArchiveError, importImageArchive } from '../../src/environments/index.js'
import { hostShellEntries, writeOciArchive, type LayerEntry } from '../helpers/oci-image.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

/**
 * A stranger's container image, imported as an environment
 * (`env import`): its layers try to write outside the root, through links
 * they planted, and to leave setuid files on the volunteer's disk.
 */

const SHELL: LayerEntry[] = hostShellEntries()

async function importing (teardown: (fn: () => unknown) => void, layers: LayerEntry[][]): Promise<{ result: unknown, root: string }> {
  const dir = await tempDir(teardown)
  const file = join(dir, 'image.tar')
  await writeOciArchive(file, layers.map((entries) => ({ entries })))
  const root = join(dir, 'root')
  const result = await importImageArchive(file, 'hostile', root).catch((err: unknown) => err)
  return { result, root }
}

describe('a hostile image', () => {
  const teardown = useTeardown()

  it('cannot write through a link it planted in a lower layer, nor remove through one', async () => {
    const outside = await tempDir(teardown)
    await writeFile(join(outside, 'keep.txt'), 'the volunteer\'s file\n')
    const written = await importing(teardown, [[...SHELL, { type: 'symlink', name: 'escape', target: outside }], [{ type: 'file', name: 'escape/planted', content: 'x' }]])
    expect(written.result).toBeInstanceOf(ImageArchiveError)
    expect((written.result as Error).message).toMatch(/through the link escape/)
    const removed = await importing(teardown, [[...SHELL, { type: 'symlink', name: 'escape', target: outside }], [{ type: 'file', name: 'escape/.wh.keep.txt', content: '' }]])
    expect(removed.result).toBeInstanceOf(ImageArchiveError)
    expect(await readdir(outside)).toEqual(['keep.txt'])
  })

  it('cannot name a path outside the root, absolute or with ..', async () => {
    for (const name of ['../planted', '/etc/planted', 'usr/../../planted']) {
      const { result } = await importing(teardown, [[...SHELL, { type: 'file', name, content: 'x' }]])
      expect(result, name).toBeInstanceOf(ImageArchiveError)
    }
    const hardlink = await importing(teardown, [[...SHELL, { type: 'link', name: 'passwd', target: '../../../etc/passwd' }]])
    expect(hardlink.result).toBeInstanceOf(ImageArchiveError)
  })

  it('cannot make the volunteer follow its links while preparing the root (resolv.conf, a mount point)', async () => {
    const outside = await tempDir(teardown)
    await writeFile(join(outside, 'resolv.conf'), 'nameserver 192.0.2.1\n')
    const { result, root } = await importing(teardown, [[
      ...SHELL,
      { type: 'directory', name: 'etc/' },
      { type: 'symlink', name: 'etc/resolv.conf', target: join(outside, 'resolv.conf') },
      { type: 'symlink', name: 'tmp', target: outside }
    ]])
    expect(result).toMatchObject({ origin: 'oci' })
    // Replaced inside the root, never written through.
    expect(await readFile(join(outside, 'resolv.conf'), 'utf8')).toBe('nameserver 192.0.2.1\n')
    expect((await stat(join(root, 'etc/resolv.conf'))).size).toBe(0)
    expect((await stat(join(root, 'tmp'))).isDirectory()).toBe(true)
    expect(await readdir(outside)).toEqual(['resolv.conf'])
  })

  it('leaves no setuid or setgid file on the volunteer\'s disk', async () => {
    const { result, root } = await importing(teardown, [[...SHELL, { type: 'directory', name: 'usr/' }, { type: 'file', name: 'usr/su', content: '#!/bin/sh\n', mode: 0o6755 }]])
    expect(result).toMatchObject({ origin: 'oci' })
    expect((await stat(join(root, 'usr/su'))).mode & 0o7777).toBe(0o755)
  })
})
