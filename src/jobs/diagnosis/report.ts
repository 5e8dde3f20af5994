/**
 * A report that never grows past its byte bound: lines past it are counted,
 * not kept, and the text ends with a note saying so.
 */
export class ReportWriter {
  private readonly kept: string[] = []
  private bytes = 0
  private dropped = 0
  private readonly budget: number

  constructor (readonly maxBytes: number) {
    // Room for the closing note.
    this.budget = Math.max(0, maxBytes - 120)
  }

  line (text = ''): void {
    const size = Buffer.byteLength(text, 'utf8') + 1
    if (this.dropped > 0 || this.bytes + size > this.budget) {
      this.dropped++
      return
    }
    this.kept.push(text)
    this.bytes += size
  }

  lines (texts: Iterable<string>): void {
    for (const text of texts) this.line(text)
  }

  get truncated (): boolean {
    return this.dropped > 0
  }

  text (): string {
    const body = this.kept.join('\n')
    if (this.dropped === 0) return `${body}\n`
    return `${body}\n[report truncated at ${this.maxBytes} bytes: ${this.dropped} more lines not shown]\n`
  }
}

/** Cut a string to at most `maxBytes` of UTF-8, on a character boundary. */
export function truncateUtf8 (text: string, maxBytes: number): { text: string, truncated: boolean } {
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.byteLength <= maxBytes) return { text, truncated: false }
  let end = maxBytes
  // Step back over UTF-8 continuation bytes so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--
  return { text: bytes.subarray(0, end).toString('utf8'), truncated: true }
}

export function hexOffset (offset: number): string {
  return `0x${offset.toString(16)}`
}

/**
 * Hex dump rows of two byte ranges read at the same offset, A above B, with a
 * marker row under the bytes that differ:
 *
 *   000001f0  A  31 37 30 30 30 30 30 30  30 30 0a 62 75 69 6c 74  |1700000000.built|
 *             B  31 37 30 30 30 30 30 30  35 35 0a 62 75 69 6c 74  |1700000055.built|
 *                                         ^^ ^^
 */
export function hexDumpPair (start: number, a: Uint8Array, b: Uint8Array): string[] {
  const rows: string[] = []
  const length = Math.max(a.byteLength, b.byteLength)
  for (let row = 0; row < length; row += 16) {
    const offset = (start + row).toString(16).padStart(8, '0')
    const aRow = a.subarray(row, row + 16)
    const bRow = b.subarray(row, row + 16)
    rows.push(`${offset}  A  ${hexCells(aRow)}  |${printable(aRow)}|`)
    rows.push(`${' '.repeat(8)}  B  ${hexCells(bRow)}  |${printable(bRow)}|`)
    const marks: string[] = []
    let any = false
    for (let i = 0; i < 16; i++) {
      const differs = i < Math.max(aRow.byteLength, bRow.byteLength) && (i >= aRow.byteLength || i >= bRow.byteLength || aRow[i] !== bRow[i])
      any ||= differs
      marks.push(differs ? '^^' : '  ')
    }
    if (any) rows.push(`${' '.repeat(8)}     ${groupCells(marks)}`.trimEnd())
  }
  return rows
}

function hexCells (bytes: Uint8Array): string {
  const cells: string[] = []
  for (let i = 0; i < 16; i++) cells.push(i < bytes.byteLength ? bytes[i]!.toString(16).padStart(2, '0') : '  ')
  return groupCells(cells)
}

/** Eight cells, a double space, eight cells, as `xxd`-style dumps do. */
function groupCells (cells: string[]): string {
  return `${cells.slice(0, 8).join(' ')}  ${cells.slice(8).join(' ')}`
}

function printable (bytes: Uint8Array): string {
  let out = ''
  for (const byte of bytes) out += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.'
  return out.padEnd(16, ' ')
}
