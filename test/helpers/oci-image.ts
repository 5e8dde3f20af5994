import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, realpathSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'

/**
 * Container images made in a test, without Docker: layers written with
 * tar-stream, stacked into an OCI image layout and packed as one tar — what
 * `docker save` (Docker ≥ 25) or `skopeo copy … oci-archive:` produce.
 */

export type LayerEntry =
  | { type: 'file', name: string, content: string | Buffer, mode?: number }
  | { type: 'directory', name: string, mode?: number }
  | { type: 'symlink', name: string, target: string }
  | { type: 'link', name: string, target: string }

export async function tarOf (entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on('data', (chunk: unknown) => { chunks.push(chunk as Buffer) })
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject) })
  const mtime = new Date(1_700_000_000_000)
  for (const entry of entries) {
    if (entry.type === 'file') {
      const content = typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content
      pack.entry({ name: entry.name, type: 'file', mode: entry.mode ?? 0o644, size: content.length, mtime, uid: 0, gid: 0 }, content)
    } else if (entry.type === 'directory') {
      pack.entry({ name: entry.name, type: 'directory', mode: entry.mode ?? 0o755, mtime, uid: 0, gid: 0 })
    } else {
      pack.entry({ name: entry.name, type: entry.type, linkname: entry.target, mode: 0o777, mtime, uid: 0, gid: 0 })
    }
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

function digest (bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

export interface ImageLayer {
  entries: LayerEntry[]
  gzip?: boolean
}

/**
 * Write an OCI layout tarball holding one image of `layers` to `file`.
 * Returns the image manifest's digest (what the environment's manifest
 * records as `image`).
 */
export async function writeOciArchive (file: string, layers: ImageLayer[], config: { architecture?: string, os?: string, created?: string } = {}): Promise<string> {
  const blobs = new Map<string, Buffer>()
  const add = (bytes: Buffer): string => { const d = digest(bytes); blobs.set(d, bytes); return d }
  const layerDescriptors = []
  const diffIds = []
  for (const layer of layers) {
    const plain = await tarOf(layer.entries)
    const bytes = layer.gzip === true ? gzipSync(plain) : plain
    diffIds.push(digest(plain))
    layerDescriptors.push({ mediaType: `application/vnd.oci.image.layer.v1.tar${layer.gzip === true ? '+gzip' : ''}`, digest: add(bytes), size: bytes.length })
  }
  const configBytes = Buffer.from(JSON.stringify({
    architecture: config.architecture ?? 'amd64',
    os: config.os ?? 'linux',
    created: config.created ?? '2026-12-01T00:00:00Z',
    rootfs: { type: 'layers', diff_ids: diffIds },
    config: {}
  }))
  const configDigest = add(configBytes)
  const manifestBytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBytes.length },
    layers: layerDescriptors
  }))
  const manifestDigest = add(manifestBytes)
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifestBytes.length, annotations: { 'org.opencontainers.image.ref.name': 'test' } }] }
  const entries: LayerEntry[] = [
    { type: 'file', name: 'oci-layout', content: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { type: 'file', name: 'index.json', content: JSON.stringify(index) },
    { type: 'directory', name: 'blobs' },
    { type: 'directory', name: 'blobs/sha256' },
    ...[...blobs].map(([d, bytes]): LayerEntry => ({ type: 'file', name: `blobs/sha256/${d.slice('sha256:'.length)}`, content: bytes }))
  ]
  await writeFile(file, await tarOf(entries))
  return manifestDigest
}

/**
 * The host's /bin/sh and the shared libraries it loads, as layer entries at
 * the paths the binary asks for (found with ldd): enough of a system for a
 * build step made of shell builtins.
 */
export function hostShellEntries (): LayerEntry[] {
  const shell = realpathSync('/bin/sh')
  const libraries = execFileSync('ldd', [shell], { encoding: 'utf8' }).split('\n')
    .map((line) => /(\/\S+) \(0x/.exec(line.trim())?.[1] ?? /=> (\/\S+)/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined)
  const entries: LayerEntry[] = []
  const dirs = new Set<string>()
  const addDirs = (path: string): void => {
    const parts = path.split('/').filter((p) => p !== '')
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/')
      if (!dirs.has(dir)) { dirs.add(dir); entries.push({ type: 'directory', name: `${dir}/` }) }
    }
  }
  for (const path of ['/bin/sh', ...libraries]) {
    addDirs(path)
    entries.push({ type: 'file', name: path.slice(1), content: readFileSync(realpathSync(path)), mode: 0o755 })
  }
  return entries
}
