import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import { z } from 'zod'
import { canonicalJson } from '../util/canonical-json.js'
import { describeError } from '../util/errors.js'
import { MAX_ADMIT, MAX_FOUNDERS, MAX_MESH_FILE_BYTES, MAX_MESH_NAME_LENGTH, MESH_FILE_VERSION, MESH_NAME_PATTERN } from './constants.js'
import { MeshFileError } from './errors.js'

/**
 * A mesh's definition: its name, the keys that are members from the start,
 * and how many members' vouches admit any other key. `closed` asks the
 * connection gater to refuse peers that are not members.
 *
 *     { "v": 1, "name": "acme-lab", "founders": ["<64 hex>", …], "admit": 2, "closed": false }
 */
export interface MeshDefinition {
  v: typeof MESH_FILE_VERSION
  name: string
  founders: string[]
  admit: number
  closed?: boolean
}

const HEX64 = /^[0-9a-f]{64}$/

const definitionSchema = z.strictObject({
  v: z.literal(MESH_FILE_VERSION),
  name: z.string().min(1).max(MAX_MESH_NAME_LENGTH).regex(MESH_NAME_PATTERN),
  founders: z.array(z.string().regex(HEX64)).max(MAX_FOUNDERS),
  admit: z.int().min(1).max(MAX_ADMIT),
  closed: z.boolean().optional()
})

/** What each field must be, in words, for the error messages. */
const EXPECTED: Record<string, string> = {
  v: `must be ${MESH_FILE_VERSION} (the only version of the mesh file)`,
  name: `must be a lower-case word of 1 to ${MAX_MESH_NAME_LENGTH} characters (letters, digits, ".", "_", "-"), e.g. "acme-lab"`,
  founders: `must be a list of at most ${MAX_FOUNDERS} public keys, each 64 lower-case hex digits (\`buildhaus-node init --json\` prints a node's as "author")`,
  admit: `must be a whole number from 1 to ${MAX_ADMIT}: how many members' vouches admit a key`,
  closed: 'must be true or false'
}

/**
 * Check a mesh definition (already parsed JSON). Throws MeshFileError naming
 * `where` (the file) and the field: a typo in a founder key must never
 * silently leave a founder out.
 */
export function checkMeshDefinition (value: unknown, where: string): MeshDefinition {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MeshFileError(`${where} is not a mesh definition: expected a JSON object like {"v":1,"name":"acme-lab","founders":["<64 hex>"],"admit":1}`)
  }
  const parsed = definitionSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    if (issue.code === 'unrecognized_keys') {
      throw new MeshFileError(`${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; a mesh file has v, name, founders, admit and optionally closed`)
    }
    const [field, index] = issue.path
    const name = String(field ?? 'the definition')
    if (name === 'founders' && typeof index === 'number') {
      throw new MeshFileError(`${where}: founders[${index}] is not a public key: expected 64 lower-case hex digits, got ${JSON.stringify((value as { founders: unknown[] }).founders[index]).slice(0, 80)}`)
    }
    const missing = !Object.hasOwn(value, name)
    throw new MeshFileError(`${where}: ${name} ${missing && name !== 'closed' ? 'is required; it ' : ''}${EXPECTED[name] ?? issue.message}`)
  }
  const definition = parsed.data as MeshDefinition
  const seen = new Set<string>()
  definition.founders.forEach((key, i) => {
    if (seen.has(key)) throw new MeshFileError(`${where}: founders[${i}] repeats the key ${key.slice(0, 16)}…; list each founder once`)
    seen.add(key)
  })
  if (definition.founders.length > 0 && definition.admit > definition.founders.length) {
    throw new MeshFileError(`${where}: admit is ${definition.admit} but there ${definition.founders.length === 1 ? 'is 1 founder' : `are ${definition.founders.length} founders`}, so no key could ever be admitted; lower admit or list more founders`)
  }
  return definition
}

/** Parse the text of a mesh file. */
export function parseMeshDefinition (text: string, where: string): MeshDefinition {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new MeshFileError(`${where} is not valid JSON: ${describeError(err)}`)
  }
  return checkMeshDefinition(value, where)
}

/** Read and check a mesh file (bounded: at most MAX_MESH_FILE_BYTES). */
export async function loadMeshFile (path: string): Promise<MeshDefinition> {
  let text: string
  try {
    const handle = await open(path, 'r')
    try {
      const info = await handle.stat()
      if (!info.isFile()) throw new MeshFileError(`${path} is not a regular file; give a mesh definition (JSON), e.g. one written by \`buildhaus-node mesh init\``)
      if (info.size > MAX_MESH_FILE_BYTES) throw new MeshFileError(`${path} is ${info.size} bytes; a mesh file is at most ${MAX_MESH_FILE_BYTES}`)
      const buffer = Buffer.alloc(info.size)
      const { bytesRead } = await handle.read(buffer, 0, info.size, 0)
      text = buffer.subarray(0, bytesRead).toString('utf8')
    } finally {
      await handle.close()
    }
  } catch (err) {
    if (err instanceof MeshFileError) throw err
    throw new MeshFileError(`cannot read the mesh file ${path}: ${describeError(err)}`)
  }
  return parseMeshDefinition(text, path)
}

/** The file's text for a definition: its members in a fixed order, founders one a line, readable in a diff. */
export function formatMeshDefinition (definition: MeshDefinition): string {
  const founders = definition.founders.length === 0 ? '[]' : `[\n${definition.founders.map((k) => `    ${JSON.stringify(k)}`).join(',\n')}\n  ]`
  const lines = [
    `  "v": ${definition.v}`,
    `  "name": ${JSON.stringify(definition.name)}`,
    `  "founders": ${founders}`,
    `  "admit": ${definition.admit}`,
    ...(definition.closed !== undefined ? [`  "closed": ${String(definition.closed)}`] : [])
  ]
  return `{\n${lines.join(',\n')}\n}\n`
}

/** A short fingerprint of a definition (sha256 of its canonical JSON, first 12 hex), to tell two meshes of one name apart. */
export function meshFingerprint (definition: MeshDefinition): string {
  const canonical = canonicalJson({ ...definition, founders: [...definition.founders].sort() })
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12)
}
