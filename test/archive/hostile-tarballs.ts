import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'

type Header = Parameters<tar.Pack['entry']>[0]

/** An entry of a hand-made tarball: tar-stream writes names and types as given, hostile or not. */
export interface RawEntry { header: Header, content?: string | Buffer }

/** Build a tar (uncompressed) from raw entries, with no safety of its own. */
export async function makeTar (entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = (async () => { for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk) })()
  for (const { header, content } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => { if (err != null) reject(err); else resolve() }
      if (content !== undefined) pack.entry({ mtime: new Date(0), ...header }, content, cb)
      else pack.entry({ mtime: new Date(0), ...header }, cb)
    })
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

export async function makeTarGz (entries: RawEntry[]): Promise<Buffer> {
  return gzipSync(await makeTar(entries))
}

export const file = (name: string, content: string | Buffer = 'x'): RawEntry => ({ header: { name, type: 'file' }, content })
export const dir = (name: string): RawEntry => ({ header: { name, type: 'directory' } })
export const symlinkEntry = (name: string, linkname: string): RawEntry => ({ header: { name, type: 'symlink', linkname } })
export const hardlinkEntry = (name: string, linkname: string): RawEntry => ({ header: { name, type: 'link', linkname } })
