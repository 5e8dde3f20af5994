import { existsSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { packDirectory, unpackTarball } from '../../../src/archive/index.js'
import { makeTar, type RawEntry } from '../../archive/hostile-tarballs.js'
import { fixedNoise, mutate, mutationsArb, onlyRejects, runs } from '../kit.js'

/**
 * The tar unpacker on random and mutated tarballs, hostile names and links
 * included. Each case unpacks into a fresh `dest` inside `case/`, beside a
 * sentinel file; an absolute escape directory is watched too. Nothing may
 * ever appear or change outside `dest`, only UnsafeArchiveError may be
 * thrown, and a successful unpack holds no link that leads outside.
 */

const ALLOWED = ['UnsafeArchiveError']
const LIMITS = { maxFiles: 40, maxBytes: 64 * 1024 }

/** Path components from a small alphabet that includes every trick. */
const componentArb = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('a', 'b', 'sub', 'l', 'x.txt') },
  { weight: 2, arbitrary: fc.constantFrom('..', '.', '') },
  { weight: 1, arbitrary: fc.constantFrom('n'.repeat(255), 'n'.repeat(300), 'ü', 'a\\b', ' ', '\u0000') }
)

function pathArb (escape: string): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom('', '', '', '', '', '', './', '/', `${escape}/`), fc.array(componentArb, { minLength: 1, maxLength: 4 }))
    .map(([prefix, parts]) => `${prefix}${parts.join('/')}`)
}

function entryArb (escape: string): fc.Arbitrary<RawEntry> {
  return fc.record({
    name: pathArb(escape),
    type: fc.constantFrom('file', 'file', 'file', 'file', 'directory', 'directory', 'directory', 'symlink', 'symlink', 'link', 'fifo', 'character-device', 'contiguous-file'),
    linkname: fc.oneof(pathArb(escape), fc.constantFrom('..', '../..', 'l/..', 'sub/../..', '/etc/passwd', escape)),
    mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o777, 0),
    content: fc.oneof({ weight: 8, arbitrary: fc.string({ maxLength: 64 }) }, { weight: 1, arbitrary: fc.constant('y'.repeat(LIMITS.maxBytes + 1)) })
  }).map(({ name, type, linkname, mode, content }) => {
    const header = { name, type: type as 'file', mode, ...(type === 'symlink' || type === 'link' ? { linkname } : {}) }
    return type === 'file' || type === 'contiguous-file' ? { header, content } : { header }
  })
}

interface Scene {
  root: string
  caseDir: string
  dest: string
  sentinel: string
  escape: string
}

async function makeScene (): Promise<Scene> {
  const root = await mkdtemp(join(tmpdir(), 'buildhaus-fuzz-unpack-'))
  const caseDir = join(root, 'case')
  return { root, caseDir, dest: join(caseDir, 'dest'), sentinel: join(caseDir, 'sentinel'), escape: join(root, '..', `${root.split('/').pop()!}-escape`) }
}

/** Everything outside dest is as it was: the scene's listing, the sentinel's bytes, no escape directory. */
async function checkOutside (scene: Scene, what: string): Promise<void> {
  const top = await readdir(scene.root)
  const inCase = await readdir(scene.caseDir)
  if (top.join() !== 'case' || inCase.sort().join() !== 'dest,sentinel') throw new Error(`${what}: something was written outside dest: ${JSON.stringify({ top, inCase })}`)
  if (await readFile(scene.sentinel, 'utf8') !== 'sentinel') throw new Error(`${what}: the sentinel beside dest changed`)
  if (existsSync(scene.escape)) throw new Error(`${what}: the absolute escape path ${scene.escape} was created`)
}

/** After a successful unpack: every symlink in dest resolves (lexically, through the tree) inside dest. */
async function checkLinks (dest: string, dir = dest): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name)
    const info = await lstat(path)
    if (info.isSymbolicLink()) {
      const target = await readlink(path)
      const resolved = resolve(dirname(path), target)
      if (target.startsWith('/') || relative(dest, resolved).startsWith('..')) throw new Error(`${relative(dest, path)} -> ${target} leads outside the tree`)
    } else if (info.isDirectory()) {
      await checkLinks(dest, path)
    } else if (!info.isFile()) {
      throw new Error(`${relative(dest, path)} is neither file, directory nor link`)
    }
  }
}

async function unpackCase (scene: Scene, bytes: Buffer, what: string): Promise<boolean> {
  await rm(scene.dest, { recursive: true, force: true })
  await mkdir(scene.dest)
  // Each way of writing a small buffer, by a property of the case: direct calls, the thread pool, and a switch after two members.
  const way = [{}, { directEntries: 0 }, { directEntries: 2 }][bytes.length % 3]!
  const outcome = await onlyRejects(ALLOWED, async () => await unpackTarball(bytes, scene.dest, LIMITS, way))
  await checkOutside(scene, what)
  // A refusal names its cause, not the stream plumbing's reaction to it.
  if (outcome.error !== undefined && /premature close|destroyed/i.test(outcome.error.message)) throw new Error(`${what}: refused without its cause: ${outcome.error.message}`)
  if (outcome.error === undefined) await checkLinks(scene.dest)
  return outcome.error === undefined
}

export async function fuzzUnpack (scale?: number): Promise<{ cases: number, unpacked: number }> {
  const scene = await makeScene()
  let cases = 0
  let unpacked = 0
  try {
    await mkdir(scene.caseDir)
    await writeFile(scene.sentinel, 'sentinel')
    // A real source tree, packed the way `submit` packs it: the seed for byte mutations.
    const source = join(scene.root, 'source')
    await mkdir(join(source, 'sub'), { recursive: true })
    await writeFile(join(source, 'a.txt'), 'apple\n')
    await writeFile(join(source, 'sub', 'b.txt'), fixedNoise(3000))
    const packed = (await packDirectory(source)).bytes
    await rm(source, { recursive: true })
    const seeds = [Buffer.from(packed), gzipSync(packed)]

    // Hand-made archives with hostile names, links and types, plain or gzip'd.
    await fc.assert(fc.asyncProperty(fc.array(entryArb(scene.escape), { minLength: 1, maxLength: 8 }), fc.boolean(), async (entries, gzip) => {
      cases++
      let tar: Buffer
      try {
        tar = await makeTar(entries)
      } catch {
        return // tar-stream itself refuses to write some headers (names too long for the format)
      }
      if (await unpackCase(scene, gzip ? gzipSync(tar) : tar, JSON.stringify(entries).slice(0, 300))) unpacked++
    }), { numRuns: runs(600, scale) })

    // Byte mutations of a real packed source, and random bytes.
    await fc.assert(fc.asyncProperty(fc.oneof(
      fc.tuple(fc.constantFrom(...seeds), mutationsArb).map(([seed, m]) => Buffer.from(mutate(seed, m))),
      fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
      fc.uint8Array({ maxLength: 600 }).map((b) => gzipSync(b))
    ), async (bytes) => {
      cases++
      if (await unpackCase(scene, bytes, `mutated archive of ${bytes.length} bytes`)) unpacked++
    }), { numRuns: runs(900, scale) })
  } finally {
    await rm(scene.root, { recursive: true, force: true })
    await rm(scene.escape, { recursive: true, force: true })
  }
  return { cases, unpacked }
}
