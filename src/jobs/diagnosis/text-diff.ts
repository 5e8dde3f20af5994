import { diffArrays } from 'diff'
import { HUNK_CONTEXT_LINES, MAX_HUNKS_SHOWN } from './constants.js'
import type { Deadline } from './deadline.js'
import type { ReportWriter } from './report.js'

export type LineOp =
  | { op: 'equal', a: number, b: number }
  | { op: 'delete', a: number }
  | { op: 'insert', b: number }

/**
 * The shortest edit script turning lines `a` into lines `b` (jsdiff's Myers
 * diff), or undefined when it needs more than `maxEdits` changed lines or the
 * deadline passes: such a diff would not help a reader anyway.
 */
export function diffLines (a: string[], b: string[], maxEdits: number, deadline: Deadline): LineOp[] | undefined {
  if (deadline.expired) return undefined
  const changes = diffArrays(a, b, { maxEditLength: maxEdits, timeout: deadline.remainingMs() })
  if (changes === undefined) {
    void deadline.expired // marks the deadline as hit when it was the time that ran out
    return undefined
  }
  const ops: LineOp[] = []
  let x = 0
  let y = 0
  for (const change of changes) {
    for (let i = 0; i < change.count; i++) {
      if (change.removed) ops.push({ op: 'delete', a: x++ })
      else if (change.added) ops.push({ op: 'insert', b: y++ })
      else ops.push({ op: 'equal', a: x++, b: y++ })
    }
  }
  return ops
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
