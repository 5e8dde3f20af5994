import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { unpackTarball } from '../archive/index.js'
import { MAX_RELEASE_BYTES, MAX_RELEASE_FILES } from './constants.js'

/**
 * Unpack a release tarball (npm's, an sdist) into `dest`, with its single
 * top-level directory (`package/`, `name-1.2.3/`) removed, so the release's
 * root is the job's root: a buildhaus.json at the package root works as is.
 */
export async function unpackRelease (bytes: Buffer, dest: string): Promise<void> {
  const raw = `${dest}.raw`
  await rm(raw, { recursive: true, force: true })
  await unpackTarball(bytes, raw, { maxBytes: MAX_RELEASE_BYTES, maxFiles: MAX_RELEASE_FILES })
  const top = await readdir(raw)
  if (top.length === 1 && (await stat(join(raw, top[0]!))).isDirectory()) {
    await rename(join(raw, top[0]!), dest)
    await rm(raw, { recursive: true, force: true })
  } else {
    await rename(raw, dest)
  }
  await mkdir(dest, { recursive: true })
}
