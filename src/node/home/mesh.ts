import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { MESH_FILE_NAME } from '../../membership/constants.js'
import { loadMeshFile, meshFingerprint, type MeshDefinition } from '../../membership/definition.js'
import { packageRoot } from '../../util/package-root.js'

/** Where a node's mesh definition came from: `--mesh FILE`, its home's mesh.json, or the project's keys/mesh.json. */
export type MeshSource = 'flag' | 'home' | 'shipped'

export interface LoadedMesh {
  definition: MeshDefinition
  file: string
  source: MeshSource
  /** sha256 of the definition's canonical JSON, first 12 hex digits: two meshes of one name differ here. */
  fingerprint: string
}

/** The project's own mesh definition: the public mesh. */
export function shippedMeshFile (): string {
  return join(packageRoot(), 'keys', MESH_FILE_NAME)
}

/** `join --mesh FILE`, else `mesh.json` in the home, else the project's keys/mesh.json. */
export async function resolveMeshFile (flag: string | undefined, home: string | undefined): Promise<{ file: string, source: MeshSource }> {
  if (flag !== undefined) return { file: flag, source: 'flag' }
  if (home !== undefined) {
    const inHome = join(home, MESH_FILE_NAME)
    if (await access(inHome).then(() => true, () => false)) return { file: inHome, source: 'home' }
  }
  return { file: shippedMeshFile(), source: 'shipped' }
}

/** Resolve and read the mesh definition; a missing or malformed file is a MeshFileError naming it. */
export async function loadMesh (flag: string | undefined, home: string | undefined): Promise<LoadedMesh> {
  const { file, source } = await resolveMeshFile(flag, home)
  const definition = await loadMeshFile(file)
  return { definition, file, source, fingerprint: meshFingerprint(definition) }
}

/** Whom a node or a reader counts: the mesh's members (the default), everyone, or a trust list directory. */
export type TrustMode = 'members' | 'everyone' | 'list'

/** The trust mode a `--trust` value means: absent → members, `everyone`, else a directory. */
export function trustModeOf (trust: string | undefined): TrustMode {
  if (trust === undefined) return 'members'
  return trust === 'everyone' ? 'everyone' : 'list'
}

/** What the start of a node (or an audit) says about a mesh with no founders. */
export function noFoundersNotice (mesh: LoadedMesh): string {
  return `the mesh "${mesh.definition.name}" (${mesh.file}) lists no founders yet, so no key is a member: ` +
    'this node relays, stores and serves the log and may submit jobs, but it builds nothing and no result counts toward a verdict. ' +
    'To run your own mesh, found one with `buildhaus-node mesh init` and start every node with `join --mesh FILE`; ' +
    'on a network where you know every machine, `--trust everyone` counts every builder (unsafe on an open network).'
}
