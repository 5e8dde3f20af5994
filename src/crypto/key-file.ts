import { KeyExistsError, KeyFileError } from './errors.js'
import { chmod, open, readFile, stat } from 'node:fs/promises'
import { decodePrivateKeyPem, encodePrivateKeyPem, generateNodeKey, type NodeKey } from './keys.js'

/**
 * Write a new key to `path` with mode 0600. Never overwrites: an existing file
 * (even an empty one) is left untouched and KeyExistsError is thrown.
 */
export async function createKeyFile (path: string, key: NodeKey = generateNodeKey()): Promise<NodeKey> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyExistsError(`a key already exists at ${path}; refusing to overwrite it (move it away first if you really mean to replace this node's identity)`)
    }
    throw new KeyFileError(`cannot create the key file ${path}: ${(err as Error).message}`)
  }
  try {
    await handle.writeFile(encodePrivateKeyPem(key))
    await handle.sync()
  } finally {
    await handle.close()
  }
  // open()'s mode is filtered by the umask; make sure the result is exactly 0600.
  await chmod(path, 0o600)
  return key
}

/** Read the key at `path`, refusing files that others can read. */
export async function loadKeyFile (path: string): Promise<NodeKey> {
  let info
  try {
    info = await stat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new KeyFileError(`no key at ${path}; run \`buildhaus-node init\` to create one`)
    throw new KeyFileError(`cannot read the key file ${path}: ${(err as Error).message}`)
  }
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    throw new KeyFileError(`the key file ${path} is readable by other users (mode ${mode}); run \`chmod 600 ${path}\` and start again`)
  }
  let pem: string
  try {
    pem = await readFile(path, 'utf8')
  } catch (err) {
    throw new KeyFileError(`cannot read the key file ${path}: ${(err as Error).message}`)
  }
  try {
    return decodePrivateKeyPem(pem)
  } catch (err) {
    throw new KeyFileError(`the key file ${path} is not usable: ${(err as Error).message}`)
  }
}
