import { open, readFile, stat } from 'node:fs/promises'
import { generateKey } from '@libp2p/pnet'
import { EnvironmentError, UsageError } from '../../util/errors.js'

/**
 * libp2p's pre-shared key ("swarm key") format, v1: three lines, the tag,
 * the encoding, and 32 bytes in hex. Nodes configured with the same key form
 * a private network; a node without it cannot even complete a handshake.
 */
const TAG = '/key/swarm/psk/1.0.0/'
const ENCODING = '/base16/'
const KEY_BYTES = 32

/** A swarm key file is tiny; anything longer is not one. */
const MAX_SWARM_KEY_FILE_BYTES = 1024

/** A new random swarm key, in the file format (libp2p's generator, and a final newline). */
export function newSwarmKey (): string {
  const bytes = new Uint8Array(TAG.length + ENCODING.length + KEY_BYTES * 2 + 2)
  generateKey(bytes)
  return `${new TextDecoder().decode(bytes)}\n`
}

/** Check a swarm key's text and return the bytes libp2p's protector takes; a malformed key is a UsageError naming the problem. */
export function parseSwarmKey (text: string, source = 'the swarm key'): Uint8Array {
  const lines = text.split(/\r?\n/).map((l) => l.trim())
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  if (lines.length !== 3 || lines[0] !== TAG) {
    throw new UsageError(`${source} is not a swarm key: it must be three lines, "${TAG}", "${ENCODING}" and ${KEY_BYTES * 2} hex digits (make one with \`buildhaus-node swarm-key FILE\`)`)
  }
  if (lines[1] !== ENCODING) throw new UsageError(`${source} uses the encoding ${JSON.stringify(lines[1])}; only ${ENCODING} is supported`)
  if (!/^[0-9a-fA-F]+$/.test(lines[2]!) || lines[2]!.length !== KEY_BYTES * 2) {
    throw new UsageError(`${source}'s key line must be exactly ${KEY_BYTES * 2} hex digits (${KEY_BYTES} bytes), not ${lines[2]!.length} characters`)
  }
  // Normalised bytes: libp2p's decoder is strict about line endings.
  return new TextEncoder().encode(`${TAG}\n${ENCODING}\n${lines[2]!.toLowerCase()}`)
}

/** Read and check a swarm key file; warns (through `warn`) when others may read it. */
export async function readSwarmKeyFile (path: string, warn?: (message: string) => void): Promise<Uint8Array> {
  let info
  try {
    info = await stat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new UsageError(`--swarm-key ${path} does not exist; make a key with \`buildhaus-node swarm-key ${path}\` and copy it to every node of the private mesh`)
    throw new EnvironmentError(`cannot read the swarm key ${path}: ${(err as Error).message}`)
  }
  if (!info.isFile()) throw new UsageError(`--swarm-key ${path} is not a file`)
  if (info.size > MAX_SWARM_KEY_FILE_BYTES) throw new UsageError(`--swarm-key ${path} is ${info.size} bytes; a swarm key file is under 100`)
  if ((info.mode & 0o077) !== 0) warn?.(`warning: the swarm key ${path} can be read by other users of this machine (mode ${(info.mode & 0o777).toString(8)}); anyone with it can join the private mesh: chmod 600 it`)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new EnvironmentError(`cannot read the swarm key ${path}: ${(err as Error).message}`)
  }
  return parseSwarmKey(text, `--swarm-key ${path}`)
}

/** Write a new swarm key to `path` (mode 0600); never overwrites an existing file. */
export async function writeNewSwarmKey (path: string): Promise<void> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') throw new UsageError(`${path} already exists; a swarm key is never overwritten (every node of the mesh holds a copy): choose another file name`)
    throw new EnvironmentError(`cannot create ${path}: ${(err as Error).message}`)
  }
  try {
    await handle.writeFile(newSwarmKey())
  } finally {
    await handle.close()
  }
}
