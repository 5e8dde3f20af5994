import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkMeshDefinition, formatMeshDefinition, loadMeshFile, MAX_ADMIT, MAX_MESH_FILE_BYTES, parseMeshDefinition } from '../../src/membership/index.js'
import { sha } from '../jobs/helpers.js'

const A = sha('a')
const B = sha('b')
const C = sha('c')

describe('the mesh definition file', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const dir of dirs) await rm(dir, { recursive: true, force: true }) })

  it('accepts the documented form and round-trips through its own writer', () => {
    const definition = checkMeshDefinition({ v: 1, name: 'acme-lab', founders: [A, B, C], admit: 2, closed: true }, 'mesh.json')
    expect(definition).toEqual({ v: 1, name: 'acme-lab', founders: [A, B, C], admit: 2, closed: true })
    expect(parseMeshDefinition(formatMeshDefinition(definition), 'x')).toEqual(definition)
    // A mesh that has no founders yet (the shipped public one) is valid: it simply has no members.
    expect(checkMeshDefinition({ v: 1, name: 'buildhaus-public', founders: [], admit: 2 }, 'keys/mesh.json').founders).toEqual([])
  })

  it('says what is wrong, naming the file and the field', () => {
    const bad = (value: unknown): string => {
      try {
        checkMeshDefinition(value, 'mesh.json')
      } catch (err) {
        expect((err as Error).name).toBe('MeshFileError')
        return (err as Error).message
      }
      throw new Error('accepted')
    }
    expect(bad([])).toMatch(/^mesh\.json is not a mesh definition: expected a JSON object/)
    expect(bad({ v: 2, name: 'x', founders: [], admit: 1 })).toBe('mesh.json: v must be 1 (the only version of the mesh file)')
    expect(bad({ v: 1, founders: [], admit: 1 })).toMatch(/^mesh\.json: name is required; it must be a lower-case word/)
    expect(bad({ v: 1, name: 'Acme Lab', founders: [], admit: 1 })).toMatch(/^mesh\.json: name must be a lower-case word/)
    expect(bad({ v: 1, name: 'x', founders: [A, 'D75A98…'], admit: 1 })).toBe('mesh.json: founders[1] is not a public key: expected 64 lower-case hex digits, got "D75A98…"')
    expect(bad({ v: 1, name: 'x', founders: [A, A], admit: 1 })).toMatch(/^mesh\.json: founders\[1\] repeats the key /)
    expect(bad({ v: 1, name: 'x', founders: [A], admit: 0 })).toMatch(/^mesh\.json: admit must be a whole number from 1 to 16/)
    expect(bad({ v: 1, name: 'x', founders: [A], admit: MAX_ADMIT + 1 })).toMatch(/admit must be a whole number/)
    expect(bad({ v: 1, name: 'x', founders: [A], admit: 2 })).toBe('mesh.json: admit is 2 but there is 1 founder, so no key could ever be admitted; lower admit or list more founders')
    expect(bad({ v: 1, name: 'x', founders: [A], admit: 1, founder: B })).toBe('mesh.json: unknown field "founder"; a mesh file has v, name, founders, admit and optionally closed')
    expect(bad({ v: 1, name: 'x', founders: [A], admit: 1, closed: 'yes' })).toBe('mesh.json: closed must be true or false')
  })

  it('reads a file with a bound, and says when it cannot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'buildhaus-mesh-'))
    dirs.push(dir)
    const good = join(dir, 'mesh.json')
    await writeFile(good, formatMeshDefinition({ v: 1, name: 'lab', founders: [A], admit: 1 }))
    expect((await loadMeshFile(good)).founders).toEqual([A])
    await expect(loadMeshFile(join(dir, 'missing.json'))).rejects.toThrow(/^cannot read the mesh file .*missing\.json: ENOENT/)
    const notJson = join(dir, 'bad.json')
    await writeFile(notJson, '{ "v": 1,')
    await expect(loadMeshFile(notJson)).rejects.toThrow(/bad\.json is not valid JSON/)
    const huge = join(dir, 'huge.json')
    await writeFile(huge, ' '.repeat(MAX_MESH_FILE_BYTES + 1))
    await expect(loadMeshFile(huge)).rejects.toThrow(`huge.json is ${MAX_MESH_FILE_BYTES + 1} bytes; a mesh file is at most ${MAX_MESH_FILE_BYTES}`)
    await expect(loadMeshFile(dir)).rejects.toThrow(/is not a regular file/)
  })
})
