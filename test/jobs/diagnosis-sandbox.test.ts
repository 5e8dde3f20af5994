import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'
import { afterEach, describe, expect, it } from 'vitest'
import { compareArtifacts, findOnPath } from '../../src/jobs/diagnosis/index.js'
import { findTool } from '../../src/sandbox/host.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'
import { processesWith } from '../sandbox/processes.js'
import { openLedgerFiles } from '../helpers/open-ledger.js'

/**
 * diffoscope reads artifacts a hostile builder crafted, with dozens of
 * unpackers: whatever it runs must not reach the node. These tests give the
 * diagnosis a stand-in "diffoscope" that attacks from where diffoscope runs
 * and prints what it managed; nothing may succeed.
 */
const teardown = useTeardown()
const bwrap = await findTool('bwrap')
const diffoscope = findOnPath('diffoscope')

async function standIn (dir: string, script: string): Promise<string> {
  const path = join(dir, 'diffoscope')
  // exec: the probe runs in a fresh `bash -c`, which holds no descriptor of its own for a script file (and,
  // unlike dash, does not exit at a redirection to a descriptor that is not open).
  await writeFile(path, `#!/bin/sh\nexec /bin/bash -c '${script.replaceAll('\'', '\'\\\'\'')}' diffoscope "$@"\n`)
  await chmod(path, 0o755)
  return path
}

async function pair (dir: string, a: Buffer | string, b: Buffer | string, names = ['a', 'b']): Promise<[{ path: string, label: string }, { path: string, label: string }]> {
  const pathA = join(dir, names[0]!)
  const pathB = join(dir, names[1]!)
  await writeFile(pathA, a)
  await writeFile(pathB, b)
  return [{ path: pathA, label: 'builder-alpha' }, { path: pathB, label: 'builder-beta' }]
}

const PROBE_ENV = 'BUILDHAUS_DIFFOSCOPE_PROBE'
afterEach(() => { Reflect.deleteProperty(process.env, PROBE_ENV) })

describe.skipIf(bwrap === undefined)('diffoscope in its sandbox', () => {
  it('cannot write into the node\'s open files, its home or its directory, nor see its environment, network or user', async () => {
    // A real ledger, open in this process as in a node: LevelDB opens its files without close-on-exec.
    const home = await tempDir(teardown, 'buildhaus-home-')
    const ledger = await openLedgerFiles(teardown, join(home, 'ledger'))
    await writeFile(join(home, 'key.pem'), 'SECRET-KEY-MATERIAL\n', { mode: 0o600 })
    const secret = `probe-${randomBytes(6).toString('hex')}`
    process.env[PROBE_ENV] = secret
    const tool = await standIn(home, [
      'echo RAN',
      // Every descriptor beyond stdio, and a write into each.
      'for n in $(seq 3 1023); do [ -e /proc/$$/fd/$n ] || continue; echo "HELD $n $(readlink /proc/$$/fd/$n)"; eval "/bin/echo pwned >&$n" 2>/dev/null && echo "WROTE fd $n"; done',
      `for target in ${home}/pwned ${home}/ledger/pwned ${home}/ledger/LOG $(dirname "$6")/pwned; do (echo pwned >> "$target") 2>/dev/null && echo "WROTE $target"; done`,
      `cat ${home}/key.pem 2>/dev/null && echo "READ key"`,
      `env | grep -q ${PROBE_ENV} && echo "ENV inherited"`,
      // Interfaces other than loopback: the host's network.
      'tail -n +3 /proc/net/dev | grep -v "^ *lo:" | sed "s/^/NET /"',
      // uid 0 here means the host's root (it is unmapped in a user namespace bwrap sets up as nobody).
      '[ "$(id -u)" = 0 ] && echo "ROOT"',
      'exit 1'
    ].join('\n'))
    const [a, b] = await pair(home, 'one\n', 'two\n')
    const report = await compareArtifacts(a, b, { diffoscope: tool })
    expect(report.tool, report.text).toBe('diffoscope')
    expect(report.text).toContain('RAN')
    expect(report.text).not.toMatch(/^(HELD|WROTE|READ|ENV|NET|ROOT)\b/m)
    expect(report.text).not.toContain('SECRET-KEY-MATERIAL')
    expect(report.text).not.toContain(secret)
    for (const name of ['pwned', 'ledger/pwned']) expect(existsSync(join(home, name))).toBe(false)
    expect(await ledger.intact()).toBe(true)
  })

  it('sees the artifacts read-only, under their own names, and a private /tmp', async () => {
    const dir = await tempDir(teardown)
    const tool = await standIn(dir, [
      'for f in "$@"; do echo "ARG $f"; done',
      'cat "$6"',
      '(echo x >> "$6") 2>/dev/null && echo "WROTE artifact"',
      'echo scratch > /tmp/scratch && echo "TMP ok"',
      'exit 1'
    ].join('\n'))
    const [a, b] = await pair(dir, 'first artifact\n', 'second artifact\n', ['pkg-1.0.tar.gz', 'pkg-1.0.tar.gz'.replace('.tar', '-b.tar')])
    const report = await compareArtifacts(a, b, { diffoscope: tool })
    expect(report.tool, report.text).toBe('diffoscope')
    expect(report.text).toContain(`ARG /in/A/${basename(a.path)}`)
    expect(report.text).toContain(`ARG /in/B/${basename(b.path)}`)
    expect(report.text).toContain('first artifact')
    expect(report.text).toContain('TMP ok')
    expect(report.text).not.toContain('WROTE')
    expect(report.text).toContain('A is /in/A/')
  })

  it('kills the whole sandbox at the time limit', async () => {
    const dir = await tempDir(teardown)
    const token = `hang-${randomBytes(6).toString('hex')}`
    // A helper that outlives the tool unless its whole pid namespace goes.
    const tool = await standIn(dir, 'setsid sh -c "sleep 60; exit" x "$6" & sleep 60; exit 1')
    const [a, b] = await pair(dir, 'one\n', 'two\n', [`one-${token}`, `two-${token}`])
    const report = await compareArtifacts(a, b, { diffoscope: tool, timeoutMs: 2000 })
    expect(report.tool).toBe('builtin')
    expect(report.text).toContain('diffoscope was stopped after')
    await expect.poll(async () => await processesWith(token), { timeout: 5000 }).toEqual([])
  })

  it('bounds the memory each of its processes may take, and says so when it runs out', async () => {
    const dir = await tempDir(teardown)
    // 256 MiB in one string (a size known only at run time), against a 64 MiB bound: perl (perl-base, on every
    // Debian) dies "Out of memory", and the stand-in fails as diffoscope does on a MemoryError (exit 2).
    const tool = await standIn(dir, 'perl -e \'my $x = "a" x shift; print "ALLOCATED\\n"\' 268435456 || exit 2; exit 1')
    const [a, b] = await pair(dir, 'one\n', 'two\n')
    const report = await compareArtifacts(a, b, { diffoscope: tool, memoryBytes: 64 * 1024 * 1024 })
    expect(report.text).not.toContain('ALLOCATED')
    expect(report.tool).toBe('builtin')
    expect(report.text).toMatch(/diffoscope failed \(exit \d+\).*[Oo]ut of memory/)
  })

  it('does not run diffoscope at all without bubblewrap: the built-in comparison says why', async () => {
    const dir = await tempDir(teardown)
    const marker = join(dir, 'ran-unsandboxed')
    const tool = await standIn(dir, `touch ${marker}; exit 1`)
    const [a, b] = await pair(dir, 'one\n', 'two\n')
    const report = await compareArtifacts(a, b, { diffoscope: tool, bwrapPath: join(dir, 'no-such-bwrap') })
    expect(report.tool).toBe('builtin')
    expect(report.text).toMatch(/Built-in comparison \(diffoscope not run: it runs only in a bubblewrap sandbox, and .*no-such-bwrap/)
    expect(existsSync(marker)).toBe(false)
  })
})

describe.skipIf(bwrap === undefined)('diffoscope\'s sandbox that cannot be had', () => {
  /** A stand-in bwrap: its `--help` lists `help`, and any sandbox fails the way bwrap says it does without user namespaces. */
  async function fakeBwrap (dir: string, help: string): Promise<string> {
    const path = join(dir, 'bwrap')
    await writeFile(path, `#!/bin/sh\nif [ "$1" = --help ]; then echo '${help}'; exit 0; fi\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n`)
    await chmod(path, 0o755)
    // A root node starts bwrap as an unprivileged user, who must reach it.
    await chmod(dir, 0o711)
    return path
  }

  it('says the sandbox failed to start, with bwrap\'s own words, and gives the built-in report', async () => {
    const dir = await tempDir(teardown)
    const tool = await standIn(dir, 'echo RAN; exit 1')
    const [a, b] = await pair(dir, 'one\n', 'two\n')
    const report = await compareArtifacts(a, b, { diffoscope: tool, bwrapPath: await fakeBwrap(dir, '--size --disable-userns --seccomp') })
    expect(report.tool).toBe('builtin')
    expect(report.text).toContain('Built-in comparison (diffoscope\'s sandbox failed to start: bwrap: No permissions to creating new namespace).')
    expect(report.text).toContain('+two')
  })

  it('does not run diffoscope with a bubblewrap that cannot bound /tmp', async () => {
    const dir = await tempDir(teardown)
    const marker = join(dir, 'ran-unbounded')
    const tool = await standIn(dir, `touch ${marker}; exit 1`)
    const [a, b] = await pair(dir, 'one\n', 'two\n')
    const report = await compareArtifacts(a, b, { diffoscope: tool, bwrapPath: await fakeBwrap(dir, '--unshare-all --ro-bind') })
    expect(report.tool).toBe('builtin')
    expect(report.text).toMatch(/diffoscope not run: it runs only in a bubblewrap sandbox, and .* cannot bound \/tmp/)
    expect(existsSync(marker)).toBe(false)
  })

  it('does not run diffoscope with a bubblewrap that cannot load the system call filter', async () => {
    const dir = await tempDir(teardown)
    const marker = join(dir, 'ran-unfiltered')
    const tool = await standIn(dir, `touch ${marker}; exit 1`)
    const [a, b] = await pair(dir, 'one\n', 'two\n')
    const report = await compareArtifacts(a, b, { diffoscope: tool, bwrapPath: await fakeBwrap(dir, '--size --disable-userns') })
    expect(report.tool).toBe('builtin')
    expect(report.text).toContain('diffoscope not run: it runs only in a bubblewrap sandbox, and it would have no seccomp filter: this bubblewrap has no --seccomp option')
    expect(existsSync(marker)).toBe(false)
  })
})

/** A real tarball, packed the way a build would pack it. */
async function tarball (members: Array<{ name: string, content: string }>): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on('data', (chunk: unknown) => { chunks.push(chunk as Buffer) })
  const done = new Promise<void>((resolve) => { pack.on('end', () => { resolve() }) })
  for (const member of members) {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name: member.name, mtime: new Date(1_700_000_000_000), mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root' }, member.content, (err) => { if (err == null) resolve(); else reject(err) })
    })
  }
  pack.finalize()
  await done
  return gzipSync(Buffer.concat(chunks))
}

describe.skipIf(bwrap === undefined || diffoscope === undefined)('real diffoscope in its sandbox', () => {
  it('explains two differing tarballs, naming the artifacts by their own names', async () => {
    const dir = await tempDir(teardown)
    const members = (stamp: string): Array<{ name: string, content: string }> => [
      { name: 'pkg-1.4.2/README.md', content: '# pkg\n' },
      { name: 'pkg-1.4.2/pkg/version.py', content: `VERSION = "1.4.2"\nBUILD_TIME = "${stamp}"\n` }
    ]
    const [a, b] = await pair(dir, await tarball(members('2026-11-21T05:00:00Z')), await tarball(members('2026-11-21T05:01:07Z')), ['pkg-1.4.2.tar.gz', 'pkg-1.4.2.tar.gz.b'])
    const report = await compareArtifacts(a, b, { timeoutMs: 60_000 })
    expect(report.tool, report.text).toBe('diffoscope')
    expect(report.text).toContain('--- /in/A/pkg-1.4.2.tar.gz')
    expect(report.text).toContain('+++ /in/B/pkg-1.4.2.tar.gz.b')
    expect(report.text).toContain('pkg-1.4.2/pkg/version.py')
    expect(report.text).toContain('-BUILD_TIME = "2026-11-21T05:00:00Z"')
    expect(report.text).toContain('+BUILD_TIME = "2026-11-21T05:01:07Z"')
    expect(report.summary).toBe('differ at 1 place; first at pkg-1.4.2/pkg/version.py byte 0x2f (line 2)')
  }, 90_000)
})
