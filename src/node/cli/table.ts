/**
 * An aligned text table: a header row and data rows, columns separated by two
 * spaces, each padded to its widest cell (the last column is not padded, so
 * no line ends in spaces). Numbers-only columns are right-aligned.
 */
export function formatTable (headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[0-9./]*$/.test(r[i] ?? '')))
  const line = (cells: string[]): string => cells.map((cell, i) => {
    const last = i === cells.length - 1
    if (numeric[i] === true) return cell.padStart(widths[i]!)
    return last ? cell : cell.padEnd(widths[i]!)
  }).join('  ').trimEnd()
  return [line(headers), ...rows.map((r) => line(r))].join('\n') + '\n'
}

/** "3s ago", "2m ago", "now". */
export function formatAge (ms: number): string {
  if (ms < 1_000) return 'now'
  if (ms < 60_000) return `${Math.floor(ms / 1_000)}s ago`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m ago`
  return `${Math.floor(ms / 3_600_000)}h ago`
}
