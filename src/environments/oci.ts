import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { unpackTarball, UnsafeArchiveError } from '../archive/index.js'
import { describeError } from '../util/errors.js'
import { MANIFEST_VERSION, MAX_IMAGE_ARCHIVE_BYTES, MAX_IMAGE_ENTRIES, MAX_IMAGE_JSON_BYTES, MAX_IMAGE_ROOT_BYTES } from './constants.js'
import { ImageArchiveError } from './errors.js'
import { packageEntries, type EnvironmentManifest } from './manifest.js'
import { applyLayer, type LayerBudget } from './oci-layer.js'
import { installedPackages, prepareRoot } from './root-fs.js'

/**
 * Importing an environment from a container image archive: an OCI image
 * layout in a tar (what `docker save` writes since Docker 25, `skopeo copy
 * … oci-archive:`, `podman save --format oci-archive`), or the older
 * `docker save` format (manifest.json and <id>/layer.tar). The image's
 * layers are stacked into a root directory; its identity is the digest of
 * the image manifest (or of the config, for the old format) and whatever
 * package database it has (dpkg's or apk's).
 */

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'])
/** Levels of nested indexes followed. */
const MAX_INDEX_DEPTH = 3

interface Descriptor {
  mediaType?: string
  digest: string
  size?: number
  platform?: { os?: string, architecture?: string }
}

interface ImageConfig {
  architecture?: string
  os?: string
  created?: string
}

/** The architecture names of OCI (GOARCH) for Node's. */
const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }

export function hostImageArchitecture (): string {
  return OCI_ARCH[process.arch] ?? process.arch
}

export interface ImportOptions {
  onLine?: (line: string) => void
  signal?: AbortSignal
}

/**
 * Import the image archive `file` as the environment `name` into `dir`
 * (which must not exist; a work directory `dir`.image is used and removed).
 * Throws ImageArchiveError for anything malformed, unsupported or unsafe.
 */
export async function importImageArchive (file: string, name: string, dir: string, options: ImportOptions = {}): Promise<EnvironmentManifest> {
  const work = `${dir}.image`
  await rm(work, { recursive: true, force: true })
  try {
    const size = (await stat(file).catch((err: unknown) => { throw new ImageArchiveError(`cannot read the image archive ${file}: ${describeError(err)}`) })).size
    if (size > MAX_IMAGE_ARCHIVE_BYTES) throw new ImageArchiveError(`the image archive is ${size} bytes, more than the ${MAX_IMAGE_ARCHIVE_BYTES} accepted`)
    options.onLine?.(`reading ${file} (${size} bytes)`)
    try {
      await unpackTarball(createReadStream(file), work, { maxBytes: MAX_IMAGE_ARCHIVE_BYTES, maxFiles: 100_000 })
    } catch (err) {
      if (err instanceof UnsafeArchiveError) throw new ImageArchiveError(`${file} is not a usable image archive: ${err.message}`)
      throw err
    }
    options.signal?.throwIfAborted()
    const image = await readImage(work)
    const config = await readJson<ImageConfig>(image.configPath, 'the image config')
    const host = hostImageArchitecture()
    if (config.os !== undefined && config.os !== 'linux') throw new ImageArchiveError(`the image is for ${config.os}, not linux`)
    if (config.architecture !== undefined && config.architecture !== host) throw new ImageArchiveError(`the image is for ${config.architecture}, and this machine runs ${host}`)

    await mkdir(dir, { mode: 0o755 })
    const budget: LayerBudget = { bytes: MAX_IMAGE_ROOT_BYTES, entries: MAX_IMAGE_ENTRIES }
    for (const [i, layer] of image.layers.entries()) {
      options.signal?.throwIfAborted()
      options.onLine?.(`applying layer ${i + 1} of ${image.layers.length}`)
      await applyLayer(createReadStream(layer), dir, budget, `layer ${i + 1}`)
    }
    await prepareRoot(dir).catch((err: unknown) => { throw new ImageArchiveError(`the image cannot be an environment: ${describeError(err)}`) })
    const { packages, architecture } = await installedPackages(dir)
    return {
      v: MANIFEST_VERSION,
      name,
      origin: 'oci',
      date: config.created ?? 'unknown',
      architecture: architecture ?? config.architecture ?? host,
      image: image.digest,
      packages: packageEntries(packages)
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

interface ImageFiles {
  /** `sha256:…` of the image manifest (OCI), or of the config (old docker format). */
  digest: string
  configPath: string
  layers: string[]
}

async function readImage (work: string): Promise<ImageFiles> {
  if (await exists(join(work, 'index.json'))) return await readOciLayout(work)
  if (await exists(join(work, 'manifest.json'))) return await readDockerArchive(work)
  throw new ImageArchiveError('the archive has neither index.json (an OCI image layout) nor manifest.json (docker save); make one with `docker save IMAGE -o FILE` or `skopeo copy docker://IMAGE oci-archive:FILE`')
}

async function readOciLayout (work: string): Promise<ImageFiles> {
  let descriptor = pickManifest((await readJson<{ manifests?: Descriptor[] }>(join(work, 'index.json'), 'index.json')).manifests, 'index.json')
  for (let depth = 0; INDEX_TYPES.has(descriptor.mediaType ?? ''); depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new ImageArchiveError('the image indexes nest too deeply')
    const nested = await readJson<{ manifests?: Descriptor[] }>(await blobPath(work, descriptor), `the index ${descriptor.digest}`)
    descriptor = pickManifest(nested.manifests, descriptor.digest)
  }
  const manifest = await readJson<{ config?: Descriptor, layers?: Descriptor[] }>(await blobPath(work, descriptor), `the image manifest ${descriptor.digest}`)
  if (manifest.config === undefined || !Array.isArray(manifest.layers)) throw new ImageArchiveError(`the image manifest ${descriptor.digest} has no config or no layers`)
  const layers: string[] = []
  for (const layer of manifest.layers) layers.push(await blobPath(work, layer))
  return { digest: descriptor.digest, configPath: await blobPath(work, manifest.config), layers }
}

/** The image manifest for this machine's platform (or the only one), from an index's list. */
function pickManifest (manifests: Descriptor[] | undefined, where: string): Descriptor {
  if (!Array.isArray(manifests) || manifests.length === 0) throw new ImageArchiveError(`${where} lists no image`)
  const usable = manifests.filter((m) => typeof m.digest === 'string' && (m.mediaType === undefined || MANIFEST_TYPES.has(m.mediaType) || INDEX_TYPES.has(m.mediaType)))
  const host = hostImageArchitecture()
  const mine = usable.find((m) => m.platform?.os === 'linux' && m.platform.architecture === host) ??
    usable.find((m) => m.platform === undefined || (m.platform.architecture === undefined && m.platform.os === undefined))
  if (mine === undefined) throw new ImageArchiveError(`${where} has no image for linux/${host}`)
  return mine
}

/** The path of a blob named by a descriptor, after checking that its content has that digest. */
async function blobPath (work: string, descriptor: Descriptor): Promise<string> {
  const match = /^sha256:([0-9a-f]{64})$/.exec(descriptor.digest)
  if (match === null) throw new ImageArchiveError(`the digest ${JSON.stringify(descriptor.digest)} is not a sha256 digest`)
  const path = join(work, 'blobs', 'sha256', match[1]!)
  if (!await exists(path)) throw new ImageArchiveError(`the archive lacks the blob ${descriptor.digest}`)
  if (await sha256File(path) !== match[1]) throw new ImageArchiveError(`the blob ${descriptor.digest} does not have that digest: the archive is damaged`)
  return path
}

async function readDockerArchive (work: string): Promise<ImageFiles> {
  const list = await readJson<Array<{ Config?: string, Layers?: string[] }>>(join(work, 'manifest.json'), 'manifest.json')
  const entry = Array.isArray(list) ? list[0] : undefined
  if (entry?.Config === undefined || !Array.isArray(entry.Layers)) throw new ImageArchiveError('manifest.json names no image (Config and Layers)')
  const inside = (name: string): string => {
    if (typeof name !== 'string' || name.startsWith('/') || name.split('/').includes('..')) throw new ImageArchiveError(`manifest.json names the unsafe path ${JSON.stringify(name)}`)
    return join(work, name)
  }
  const configPath = inside(entry.Config)
  return { digest: `sha256:${await sha256File(configPath)}`, configPath, layers: entry.Layers.map(inside) }
}

async function readJson<T> (path: string, what: string): Promise<T> {
  let bytes: Buffer
  try {
    const size = (await stat(path)).size
    if (size > MAX_IMAGE_JSON_BYTES) throw new ImageArchiveError(`${what} is ${size} bytes, more than the ${MAX_IMAGE_JSON_BYTES} read`)
    bytes = await readFile(path)
  } catch (err) {
    if (err instanceof ImageArchiveError) throw err
    throw new ImageArchiveError(`cannot read ${what}: ${describeError(err)}`)
  }
  try {
    return JSON.parse(bytes.toString('utf8')) as T
  } catch (err) {
    throw new ImageArchiveError(`${what} is not JSON: ${describeError(err)}`)
  }
}

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}
