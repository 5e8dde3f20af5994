import { HUNK_CONTEXT_LINES, MAX_HUNKS_SHOWN } from './constants.js'
import type { Deadline } from './deadline.js'
import type { ReportWriter } from './report.js'

export type LineOp =
  | { op: 'equal', a: number, b: number }
  | { op: 'delete', a: number }
  | { op: 'insert', b: number }

/**
 * The shortest edit script turning lines `a` into lines `b` (Myers' O(ND)
 * algorithm), or undefined when it needs more than `maxEdits` changed lines
 * or the deadline passes: such a diff would not help a reader anyway.
 */
export function diffLines (a: string[], b: string[], maxEdits: number, deadline: Deadline): LineOp[] | undefined {
  // Common prefix and suffix cost nothing and shrink the search.
  let prefix = 0
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++
  let suffix = 0
  while (suffix < a.length - prefix && suffix < b.length - prefix && a[a.length - 1 - suffix] === b[b.length - 1 - suffix]) suffix++
  const midA = a.slice(prefix, a.length - suffix)
  const midB = b.slice(prefix, b.length - suffix)
  const middle = myers(midA, midB, maxEdits, deadline)
  if (middle === undefined) return undefined
  const ops: LineOp[] = []
  for (let i = 0; i < prefix; i++) ops.push({ op: 'equal', a: i, b: i })
  for (const op of middle) {
    if (op.op === 'equal') ops.push({ op: 'equal', a: op.a + prefix, b: op.b + prefix })
    else if (op.op === 'delete') ops.push({ op: 'delete', a: op.a + prefix })
    else ops.push({ op: 'insert', b: op.b + prefix })
  }
  for (let i = 0; i < suffix; i++) ops.push({ op: 'equal', a: a.length - suffix + i, b: b.length - suffix + i })
  return ops
}

function myers (a: string[], b: string[], maxEdits: number, deadline: Deadline): LineOp[] | undefined {
  const n = a.length
  const m = b.length
  const limit = Math.min(n + m, maxEdits)
  const offset = limit + 1
  // v[k + offset] = furthest x reached on diagonal k; one snapshot per edit count, for the walk back.
  const v = new Int32Array(2 * limit + 3)
  const trace: Int32Array[] = []
  for (let d = 0; d <= limit; d++) {
    if (d % 64 === 0 && deadline.expired) return undefined
    trace.push(v.slice())
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[k - 1 + offset]! < v[k + 1 + offset]!) ? v[k + 1 + offset]! : v[k - 1 + offset]! + 1
      let y = x - k
      while (x < n && y < m && a[x] === b[y]) {
        x++
        y++
      }
      v[k + offset] = x
      if (x >= n && y >= m) return walkBack(trace, n, m, offset)
    }
  }
  return undefined
}

function walkBack (trace: Int32Array[], n: number, m: number, offset: number): LineOp[] {
  const ops: LineOp[] = []
  let x = n
  let y = m
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d]!
    const k = x - y
    const prevK = k === -d || (k !== d && v[k - 1 + offset]! < v[k + 1 + offset]!) ? k + 1 : k - 1
    const prevX = v[prevK + offset]!
    const prevY = prevX - prevK
    while (x > prevX && y > prevY) {
      x--
      y--
      ops.push({ op: 'equal', a: x, b: y })
    }
    if (d > 0) {
      if (x === prevX) ops.push({ op: 'insert', b: y - 1 })
      else ops.push({ op: 'delete', a: x - 1 })
    }
    x = prevX
    y = prevY
  }
  return ops.reverse()
}

/** Runs of consecutive changed lines: what "places" counts for text. */
export function countChangeGroups (ops: LineOp[]): number {
  let groups = 0
  let inGroup = false
  for (const op of ops) {
    if (op.op === 'equal') {
      inGroup = false
    } else if (!inGroup) {
      groups++
      inGroup = true
    }
  }
  return groups
}

/** A unified diff (`@@ -a,n +b,m @@` hunks with context) of the first MAX_HUNKS_SHOWN hunks. */
export function writeUnifiedDiff (report: ReportWriter, a: string[], b: string[], ops: LineOp[], labels: { a: string, b: string }): void {
  report.line(`--- ${labels.a}`)
  report.line(`+++ ${labels.b}`)
  const hunks = groupHunks(ops)
  for (const hunk of hunks.slice(0, MAX_HUNKS_SHOWN)) {
    const first = hunk[0]!
    const startA = (first.op === 'insert' ? nextA(ops, first) : first.a) + 1
    const startB = (first.op === 'delete' ? nextB(ops, first) : first.b) + 1
    const countA = hunk.filter((op) => op.op !== 'insert').length
    const countB = hunk.filter((op) => op.op !== 'delete').length
    report.line(`@@ -${countA === 0 ? startA - 1 : startA},${countA} +${countB === 0 ? startB - 1 : startB},${countB} @@`)
    for (const op of hunk) {
      if (op.op === 'equal') report.line(` ${visible(a[op.a]!)}`)
      else if (op.op === 'delete') report.line(`-${visible(a[op.a]!)}`)
      else report.line(`+${visible(b[op.b]!)}`)
    }
  }
  if (hunks.length > MAX_HUNKS_SHOWN) report.line(`(${hunks.length - MAX_HUNKS_SHOWN} more hunks not shown)`)
}

function groupHunks (ops: LineOp[]): LineOp[][] {
  const changed = ops.map((op, i) => (op.op === 'equal' ? -1 : i)).filter((i) => i >= 0)
  const hunks: LineOp[][] = []
  let start = -1
  let end = -1
  for (const i of changed) {
    const from = Math.max(0, i - HUNK_CONTEXT_LINES)
    if (start >= 0 && from <= end + 1) {
      end = Math.min(ops.length - 1, i + HUNK_CONTEXT_LINES)
      continue
    }
    if (start >= 0) hunks.push(ops.slice(start, end + 1))
    start = from
    end = Math.min(ops.length - 1, i + HUNK_CONTEXT_LINES)
  }
  if (start >= 0) hunks.push(ops.slice(start, end + 1))
  return hunks
}

/** Line number in A where an insertion at the start of a hunk goes (the next A line, or A's length). */
function nextA (ops: LineOp[], from: LineOp): number {
  for (let i = ops.indexOf(from); i < ops.length; i++) {
    const op = ops[i]!
    if (op.op !== 'insert') return op.a
  }
  return ops.filter((op) => op.op !== 'insert').length
}

function nextB (ops: LineOp[], from: LineOp): number {
  for (let i = ops.indexOf(from); i < ops.length; i++) {
    const op = ops[i]!
    if (op.op !== 'delete') return op.b
  }
  return ops.filter((op) => op.op !== 'delete').length
}

const MAX_LINE_CHARS = 400

/** Control characters as \xNN (a stray \r is often the whole story), and very long lines cut. */
function visible (line: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  if (escaped.length <= MAX_LINE_CHARS) return escaped
  return `${escaped.slice(0, MAX_LINE_CHARS)}… (${escaped.length - MAX_LINE_CHARS} more characters)`
}
