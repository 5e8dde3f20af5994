import { execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import tar from 'tar-stream'
import { describe, expect, it } from 'vitest'
import { scanTar, type TarMember } from '../../src/jobs/diagnosis/tar.js'
import { InvalidInputError } from '../../src/util/errors.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

const teardown = useTeardown()

async function * chunks (bytes: Buffer, size = 700): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += size) yield bytes.subarray(i, i + size)
}

async function packed (entries: Array<{ header: Parameters<ReturnType<typeof tar.pack>['entry']>[0], body?: string }>): Promise<Buffer> {
  const pack = tar.pack()
  for (const { header, body } of entries) pack.entry(header, body ?? '')
  pack.finalize()
  const parts: Buffer[] = []
  for await (const part of pack as AsyncIterable<Buffer>) parts.push(part)
  return Buffer.concat(parts)
}

async function list (bytes: Buffer, read = true): Promise<Array<TarMember & { body: string }>> {
  const members: Array<TarMember & { body: string }> = []
  await scanTar(chunks(bytes), async (member, body) => {
    let text = ''
    if (read) for await (const piece of body) text += piece.toString('utf8')
    members.push({ ...member, body: text })
  }, () => false)
  return members
}

describe('scanTar (tar-stream underneath)', () => {
  it('reads GNU long names and links, ustar prefixes, and every header field, from a tarball made by tar(1)', async () => {
    const dir = await tempDir(teardown)
    const deep = join(dir, 'src', 'a'.repeat(60), 'b'.repeat(60))
    await mkdir(deep, { recursive: true })
    await writeFile(join(deep, 'file.txt'), 'hello\n')
    execFileSync('ln', ['-s', join('a'.repeat(60), 'b'.repeat(60), 'file.txt'), join(dir, 'src', 'link')])
    const archive = join(dir, 'out.tar')
    execFileSync('tar', ['--format=gnu', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@1700000000', '-cf', archive, '-C', join(dir, 'src'), '.'])
    const members = await list(await readFile(archive))
    const file = members.find((m) => m.name.endsWith('/file.txt'))!
    expect(file.name).toBe(`./${'a'.repeat(60)}/${'b'.repeat(60)}/file.txt`)
    expect(file).toMatchObject({ type: 'file', size: 6, uid: 0, gid: 0, mtime: 1_700_000_000, body: 'hello\n' })
    expect(members.find((m) => m.name === './link')).toMatchObject({ type: 'symlink', linkname: `${'a'.repeat(60)}/${'b'.repeat(60)}/file.txt` })
    expect(members.filter((m) => m.type === 'directory').length).toBe(3)
  })

  it('applies pax records (uid, names, sub-second mtime) and lists the others, sorted', async () => {
    const bytes = await packed([{ header: { name: 'a.txt', mode: 0o644, mtime: new Date(1_000_000_000), pax: { mtime: '1700000000.25', uid: '4242', uname: 'builder', 'SCHILY.xattr.user.x': 'y', atime: '1' } }, body: 'abc' }])
    const [member] = await list(bytes)
    expect(member).toMatchObject({ name: 'a.txt', size: 3, mode: 0o644, uid: 4242, uname: 'builder', mtime: 1_700_000_000.25, pax: 'SCHILY.xattr.user.x=y atime=1', body: 'abc' })
  })

  it('skips what a visitor leaves unread, also when it stops reading halfway, and stops early when told', async () => {
    const bytes = await packed([1, 2, 3, 4].map((i) => ({ header: { name: `f${i}` }, body: String(i).repeat(1000) })))
    expect((await list(bytes, false)).map((m) => m.name)).toEqual(['f1', 'f2', 'f3', 'f4'])
    const firsts: string[] = []
    await scanTar(chunks(bytes), async (member, body) => {
      for await (const piece of body) { firsts.push(`${member.name}:${piece.subarray(0, 3).toString()}`); break }
    }, () => false)
    expect(firsts).toEqual(['f1:111', 'f2:222', 'f3:333', 'f4:444'])
    const seen: string[] = []
    const result = await scanTar(chunks(bytes), async (member) => { seen.push(member.name) }, (count) => count >= 2)
    expect(result).toEqual({ members: 2, complete: false })
    expect(seen).toEqual(['f1', 'f2'])
  })

  it('refuses a damaged or cut archive with an InvalidInputError, and passes the source\'s and the visitor\'s own errors on', async () => {
    const bytes = await packed([{ header: { name: 'x' }, body: 'x'.repeat(2000) }, { header: { name: 'y' }, body: 'y' }])
    const damaged = Buffer.from(bytes)
    damaged[512 + 2048 + 10] ^= 0xff // inside the second header (after the first and its padded body): its checksum no longer matches
    await expect(list(damaged)).rejects.toBeInstanceOf(InvalidInputError)
    await expect(list(damaged)).rejects.toThrow(/^not a valid tar archive \(after 1 members\)/)
    await expect(list(bytes.subarray(0, 1200))).rejects.toThrow(/not a valid tar archive/)

    const own = new Error('the decompression bound')
    async function * failing (): AsyncGenerator<Uint8Array> {
      yield bytes.subarray(0, 600)
      throw own
    }
    await expect(scanTar(failing(), async () => {}, () => false)).rejects.toBe(own)
    const visitors = new Error('the visitor failed')
    await expect(scanTar(chunks(bytes), async () => { throw visitors }, () => false)).rejects.toBe(visitors)
  })
})
