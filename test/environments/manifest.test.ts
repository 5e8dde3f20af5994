import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { debianArchiveOf, findDebianArchive, parseSourcesFile, parseSourcesList } from '../../src/environments/apt-sources.js'
import { parseRelease } from '../../src/environments/debian.js'
import {
  describeDifferences, differingPackages, manifestBytes, manifestHash, normalisePackages, packageNameProblem, packageVersions, parseManifest,
  validateManifest, type EnvironmentManifest
} from '../../src/environments/index.js'
import { apkInstalled, dpkgInstalled } from '../../src/environments/package-db.js'
import { resolveInRoot } from '../../src/environments/root-fs.js'

/** Parsing what environments are made of, and their identity: pure functions, no archive needed. */

const MANIFEST: EnvironmentManifest = {
  v: 1,
  name: 'debian-12',
  origin: 'Debian',
  suite: 'bookworm',
  date: 'Sat, 15 Nov 2026 09:30:12 UTC',
  architecture: 'amd64',
  packages: ['apt (= 2.6.1)', 'dpkg (= 1.21.22)', 'libc6 (= 2.36-9+deb12u13)', 'libc6:i386 (= 2.36-9+deb12u13)']
}

describe('the manifest', () => {
  it('is canonical JSON, and its sha256 is the environment\'s hash', () => {
    const bytes = manifestBytes(MANIFEST)
    expect(bytes.toString()).toBe('{"architecture":"amd64","date":"Sat, 15 Nov 2026 09:30:12 UTC","name":"debian-12","origin":"Debian","packages":["apt (= 2.6.1)","dpkg (= 1.21.22)","libc6 (= 2.36-9+deb12u13)","libc6:i386 (= 2.36-9+deb12u13)"],"suite":"bookworm","v":1}')
    expect(manifestHash(MANIFEST)).toMatch(/^[0-9a-f]{64}$/)
    expect(parseManifest(bytes)).toEqual(MANIFEST)
    expect(packageVersions(MANIFEST).get('libc6:i386')).toBe('2.36-9+deb12u13')
  })

  it('refuses bytes that are not its canonical form, unsorted packages, unknown fields', () => {
    expect(() => parseManifest(Buffer.from(JSON.stringify(MANIFEST, null, 2)))).toThrow(/canonical/)
    expect(() => validateManifest({ ...MANIFEST, packages: ['dpkg (= 1)', 'apt (= 2)'] })).toThrow(/sorted/)
    expect(() => validateManifest({ ...MANIFEST, extra: 1 })).toThrow(/not an environment manifest/)
    expect(() => validateManifest({ ...MANIFEST, packages: ['apt 2.6.1'] })).toThrow(/name \(= version\)/)
    expect(() => parseManifest(Buffer.from([0xff, 0xfe]))).toThrow(/UTF-8 JSON/)
  })

  it('names the packages that differ, those a job asked for first, and how many more', () => {
    const a = new Map([['gcc', '4:12.2.0-3'], ['libc6', '2.36-9'], ['make', '4.3-4.1'], ['only-a', '1']])
    const b = new Map([['gcc', '4:14.2.0-1'], ['libc6', '2.41-12'], ['make', '4.3-4.1'], ['only-b', '2']])
    const differences = differingPackages([a, b], ['libc6'])
    expect(differences.map((d) => d.name)).toEqual(['libc6', 'gcc', 'only-a', 'only-b'])
    expect(describeDifferences(differences, 3)).toBe('libc6 2.36-9 vs 2.41-12, gcc 4:12.2.0-3 vs 4:14.2.0-1, only-a 1 vs (none) and 1 more')
  })
})

describe('package names', () => {
  it('takes Debian package names only, sorted and each once', () => {
    expect(normalisePackages(['texinfo', 'debhelper', 'texinfo', 'g++'])).toEqual(['debhelper', 'g++', 'texinfo'])
    for (const bad of ['-o', 'Foo', 'a', 'has space', 'x;rm']) expect(packageNameProblem(bad), bad).toBeDefined()
    expect(() => normalisePackages(['--allow-unauthenticated'])).toThrow(/not a Debian package name/)
  })
})

describe('package databases', () => {
  it('lists what dpkg says is installed, qualifying foreign architectures as .buildinfo does', () => {
    const status = [
      'Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\nDescription: x\n continuation',
      'Package: libc6\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\nVersion: 2.36-9',
      'Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0',
      'Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2026a-1'
    ].join('\n\n')
    const { packages, architecture } = dpkgInstalled(status)
    expect(architecture).toBe('amd64')
    expect([...packages]).toEqual([['dpkg', '1.21.22'], ['libc6:i386', '2.36-9'], ['tzdata', '2026a-1']])
  })

  it('reads Alpine\'s apk database', () => {
    expect([...apkInstalled('P:musl\nV:1.2.5-r0\nA:x86_64\n\nP:busybox\nV:1.36.1-r29\nA:x86_64\n').packages]).toEqual([['musl', '1.2.5-r0'], ['busybox', '1.36.1-r29']])
  })
})

describe('where a Debian base comes from', () => {
  it('reads origin, suite and date from a clear-signed InRelease', () => {
    const text = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian\nSuite: stable\nVersion: 12.12\nCodename: bookworm\nDate: Sat, 15 Nov 2026 09:30:12 UTC\nMD5Sum:\n abc 1 main/x\n-----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n'
    expect(parseRelease(text)).toEqual({ origin: 'Debian', suite: 'stable', codename: 'bookworm', version: '12.12', date: 'Sat, 15 Nov 2026 09:30:12 UTC' })
  })

  it('finds the Debian archive in the machine\'s apt sources, in either style, never a security or third-party one', async () => {
    expect(debianArchiveOf(parseSourcesList('# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://archive.example/debian-security bookworm-security main\ndeb http://mirror.example/debian/ bookworm main\n'))).toBe('http://mirror.example/debian')
    const deb822 = 'Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\nTypes: deb deb-src\nURIs: http://on.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\n'
    expect(debianArchiveOf(parseSourcesFile(deb822))).toBe('http://on.example/debian')
    const etc = await mkdtemp(join(tmpdir(), 'buildhaus-apt-'))
    await mkdir(join(etc, 'sources.list.d'))
    await writeFile(join(etc, 'sources.list.d', 'vendor.sources'), 'Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\n')
    await expect(findDebianArchive({ etcApt: etc, env: {} })).rejects.toThrow(/BUILDHAUS_DEBIAN_MIRROR/)
    await writeFile(join(etc, 'sources.list.d', 'debian.sources'), deb822)
    expect(await findDebianArchive({ etcApt: etc, env: {} })).toBe('http://on.example/debian')
    expect(await findDebianArchive({ etcApt: etc, env: { BUILDHAUS_DEBIAN_MIRROR: 'http://given.example/debian/' } })).toBe('http://given.example/debian')
  })
})

describe('reading inside a root', () => {
  it('resolves links as the root would, never leaving it', async () => {
    const { symlink } = await import('node:fs/promises')
    const root = await mkdtemp(join(tmpdir(), 'buildhaus-root-'))
    await mkdir(join(root, 'usr/lib'), { recursive: true })
    await mkdir(join(root, 'etc'))
    await writeFile(join(root, 'usr/lib/os-release'), 'NAME=x\n')
    await symlink('/usr/lib/os-release', join(root, 'etc/os-release'))
    await symlink('../../../../../../etc', join(root, 'escape'))
    expect(await resolveInRoot(root, '/etc/os-release')).toBe(join(root, 'usr/lib/os-release'))
    // `..` stops at the root: this is the root's /etc, not the host's.
    expect(await resolveInRoot(root, '/escape/os-release')).toBe(join(root, 'usr/lib/os-release'))
    await symlink('loop', join(root, 'loop'))
    expect(await resolveInRoot(root, '/loop')).toBeUndefined()
  })
})
