// Apart from mesh.ts: making keys loads libp2p's key code, which commands that only read a mesh file (audit) do not need.
import { writeFile } from 'node:fs/promises'
import { DEFAULT_ADMIT, MESH_FILE_VERSION } from '../../membership/constants.js'
import { checkMeshDefinition, formatMeshDefinition, type MeshDefinition } from '../../membership/definition.js'
import { loadOrCreateIdentity } from './identity.js'

/**
 * Found a mesh for nodes that will run in these homes: each home gets its key
 * now (an existing one is kept), and `file` a definition listing them all as
 * founders. The demo does this for its nodes; benchmarks and tests too.
 */
export async function foundMeshFor (homes: readonly string[], file: string, options: { name: string, admit?: number }): Promise<MeshDefinition> {
  const founders: string[] = []
  for (const home of homes) founders.push((await loadOrCreateIdentity(home)).author)
  const definition = checkMeshDefinition({
    v: MESH_FILE_VERSION,
    name: options.name,
    founders,
    admit: options.admit ?? Math.min(DEFAULT_ADMIT, founders.length)
  }, file)
  await writeFile(file, formatMeshDefinition(definition))
  return definition
}
