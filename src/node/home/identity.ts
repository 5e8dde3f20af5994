import { randomBytes } from 'node:crypto'
import { chmod, open, readFile, stat } from 'node:fs/promises'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { KeyFileError } from '../../crypto/errors.js'
import { createKeyFile, loadKeyFile } from '../../crypto/key-file.js'
import type { NodeKey } from '../../crypto/keys.js'
import { libp2pPrivateKey } from '../../crypto/peer-id.js'
import { EnvironmentError } from '../../util/errors.js'
import { TokenFileError } from '../errors.js'
import { ensureHome, type HomePaths } from './home.js'

/** A node's identity: one Ed25519 key, named by libp2p as a peer id and by the log as an author. */
export interface NodeIdentity {
  paths: HomePaths
  key: NodeKey
  privateKey: PrivateKey
  peerId: PeerId
  /** The public key in hex: the node's name as a log author. */
  author: string
  /** Bearer token for API mutations from other machines. */
  apiToken: string
}

export interface InitResult {
  identity: NodeIdentity
  /** Whether the token file was written now (false: an existing one was kept). */
  createdToken: boolean
}

/**
 * `buildhaus-node init`: make the key (0600, PKCS#8 PEM) and the API token in
 * `home`. Refuses with KeyExistsError, touching nothing, if a key is already there.
 */
export async function initIdentity (home: string): Promise<InitResult> {
  const paths = await prepareHome(home)
  // The key first: if it exists, nothing else is touched.
  const key = await createKeyFile(paths.key)
  const createdToken = await createTokenFile(paths.apiToken)
  return { identity: await identityOf(paths, key, await loadTokenFile(paths.apiToken)), createdToken }
}

/**
 * The identity of the node in `home`, made on first run. An existing key that
 * is unreadable or readable by others is refused (KeyFileError), never replaced.
 */
export async function loadOrCreateIdentity (home: string): Promise<NodeIdentity> {
  const paths = await prepareHome(home)
  if (!await exists(paths.key)) return (await initIdentity(home)).identity
  const key = await loadKeyFile(paths.key)
  await createTokenFile(paths.apiToken)
  return await identityOf(paths, key, await loadTokenFile(paths.apiToken))
}

async function identityOf (paths: HomePaths, key: NodeKey, apiToken: string): Promise<NodeIdentity> {
  const privateKey = await libp2pPrivateKey(key)
  return { paths, key, privateKey, peerId: peerIdFromPrivateKey(privateKey), author: key.publicHex, apiToken }
}

async function prepareHome (home: string): Promise<HomePaths> {
  try {
    return await ensureHome(home)
  } catch (err) {
    throw new EnvironmentError(`cannot create the node home ${home}: ${(err as Error).message}; choose another with --home or $BUILDHAUS_HOME`, { cause: err })
  }
}

/** Write a fresh random token (0600) unless a token file exists; returns whether it wrote one. */
async function createTokenFile (path: string): Promise<boolean> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw new TokenFileError(`cannot create the API token file ${path}: ${(err as Error).message}`)
  }
  try {
    await handle.writeFile(`${randomBytes(32).toString('hex')}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await chmod(path, 0o600)
  return true
}

/** Read the API token, refusing a file others can read (it grants mutations over the network). */
export async function loadTokenFile (path: string): Promise<string> {
  let text: string
  try {
    const info = await stat(path)
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
      throw new TokenFileError(`the API token file ${path} is readable by other users (mode ${mode}); run \`chmod 600 ${path}\` and start again`)
    }
    text = (await readFile(path, 'utf8')).trim()
  } catch (err) {
    if (err instanceof TokenFileError) throw err
    throw new TokenFileError(`cannot read the API token file ${path}: ${(err as Error).message}`)
  }
  if (!/^[\x21-\x7e]{16,}$/.test(text)) {
    throw new TokenFileError(`the API token file ${path} does not hold a token (16 or more printable characters); delete it and a new one is made at the next start`)
  }
  return text
}

async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new KeyFileError(`cannot read the key file ${path}: ${(err as Error).message}`)
  }
}
