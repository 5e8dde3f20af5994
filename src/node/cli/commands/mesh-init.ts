import { open } from 'node:fs/promises'
import { resolve } from 'node:path'
import { authorOfPeerId } from '../../../crypto/peer-id.js'
import { checkMeshDefinition, DEFAULT_ADMIT, formatMeshDefinition, MESH_FILE_NAME, MESH_FILE_VERSION, meshFingerprint, type MeshDefinition } from '../../../membership/index.js'
import { describeError, UsageError } from '../../../util/errors.js'
import { resolveHome } from '../../home/home.js'
import { loadOrCreateIdentity } from '../../home/identity.js'
import { defineCommand } from '../command.js'
import { meshInitSpec } from '../specs.js'

export const meshInitCommand = defineCommand({
  ...meshInitSpec,
  async run (options, _positionals, io) {
    const home = resolveHome(options.home, io.env)
    const founders: string[] = []
    let self: string | undefined
    if (options.self) {
      self = (await loadOrCreateIdentity(home)).author
      founders.push(self)
    }
    for (const text of options.founder) {
      const key = parseMemberKey(text, '--founder')
      if (!founders.includes(key)) founders.push(key)
    }
    if (founders.length === 0) throw new UsageError('a mesh needs at least one founder: drop --no-self, or give --founder KEY')
    const admit = options.admit === undefined
      ? Math.min(DEFAULT_ADMIT, founders.length)
      : /^\d+$/.test(options.admit) ? Number(options.admit) : NaN
    const name = options.name ?? defaultName(home)
    const definition: MeshDefinition = checkMeshDefinition({
      v: MESH_FILE_VERSION,
      name,
      founders,
      admit,
      ...(options.closed ? { closed: true } : {})
    }, 'the mesh to write')
    const file = resolve(options.out ?? `${home}/${MESH_FILE_NAME}`)
    await writeNew(file, formatMeshDefinition(definition), options.force)
    const result = { file, name: definition.name, fingerprint: meshFingerprint(definition), founders: definition.founders, admit: definition.admit, closed: definition.closed === true, ...(self !== undefined ? { self } : {}) }
    if (options.json) {
      io.stdout.write(`${JSON.stringify(result)}\n`)
      return 0
    }
    io.stdout.write([
      `founded the mesh "${definition.name}" in ${file}`,
      `  founders  ${definition.founders.length}${self !== undefined ? ' (this node among them)' : ''}`,
      ...definition.founders.map((k) => `            ${k}${k === self ? '  (this node)' : ''}`),
      `  admit     ${definition.admit} member${definition.admit === 1 ? '\'s vouch admits' : 's\' vouches admit'} a key`,
      ...(definition.closed === true ? ['  closed    nodes refuse connections from keys that are not members'] : []),
      'next:',
      `  start each founder's node with \`buildhaus-node join --mesh ${file}\` (or copy the file to its home as ${MESH_FILE_NAME});`,
      '  give the file to volunteers; a volunteer\'s node builds once enough members run `buildhaus-node vouch <its author key>`.',
      ''
    ].join('\n'))
    return 0
  }
})

/** A key as the CLI accepts it: 64 hex digits, or a peer id (the same Ed25519 key). */
export function parseMemberKey (text: string, what: string): string {
  if (/^[0-9a-f]{64}$/.test(text)) return text
  if (/^[0-9A-Fa-f]{64}$/.test(text)) return text.toLowerCase()
  try {
    return authorOfPeerId(text)
  } catch {
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a key: give 64 hex digits (the "author" that \`buildhaus-node init --json\` or \`members\` prints) or a peer id (12D3KooW…)`)
  }
}

function defaultName (home: string): string {
  const base = home.split('/').filter((part) => part !== '').pop() ?? ''
  const cleaned = base.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 64)
  return cleaned === '' || cleaned === 'buildhaus' ? 'my-mesh' : cleaned
}

/** Write a new file; an existing one is kept (and the command fails) unless `force`. */
async function writeNew (file: string, text: string, force: boolean): Promise<void> {
  let handle
  try {
    handle = await open(file, force ? 'w' : 'wx', 0o644)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UsageError(`${file} already exists; keep it, choose another --out, or add --force to replace it`)
    throw new UsageError(`cannot write ${file}: ${describeError(err)}`)
  }
  try {
    await handle.writeFile(text)
  } finally {
    await handle.close()
  }
}
