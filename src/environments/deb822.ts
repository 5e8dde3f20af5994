/**
 * Debian's control-file format (deb822): paragraphs separated by blank
 * lines, `Field: value` lines, continuation lines starting with a space or a
 * tab. Enough of it for dpkg's status, apt's Release and .sources files.
 */

export type Paragraph = Map<string, string>

/** Paragraphs of a deb822 text; field names compared case-insensitively (kept lower-case), `#` comment lines skipped. */
export function parseDeb822 (text: string): Paragraph[] {
  const paragraphs: Paragraph[] = []
  let current: Paragraph | undefined
  let last: string | undefined
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '') {
      if (current !== undefined) paragraphs.push(current)
      current = undefined
      last = undefined
      continue
    }
    if (line.startsWith('#')) continue
    if ((line.startsWith(' ') || line.startsWith('\t')) && current !== undefined && last !== undefined) {
      current.set(last, `${current.get(last)!}\n${line.trim()}`)
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    current ??= new Map()
    last = line.slice(0, colon).trim().toLowerCase()
    current.set(last, line.slice(colon + 1).trim())
  }
  if (current !== undefined) paragraphs.push(current)
  return paragraphs
}

/** The signed text of an OpenPGP clear-signed message (an InRelease file), or the text itself. */
export function clearSignedText (text: string): string {
  if (!text.startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) return text
  const body = text.slice(text.indexOf('\n\n') + 2)
  const end = body.indexOf('\n-----BEGIN PGP SIGNATURE-----')
  return (end < 0 ? body : body.slice(0, end)).replace(/^- /gm, '')
}
