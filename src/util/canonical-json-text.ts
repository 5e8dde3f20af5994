/**
 * A one-pass check, over the text itself, that a line already known to be
 * valid JSON (JSON.parse accepted it) is exactly what canonicalJsonOfParsed
 * would serialise it to: RFC 8785 form (no white space, members sorted by
 * UTF-16 code units and each once, strings escaped as ECMAScript's
 * JSON.stringify does), integers only within ±(2^53-1), well-formed Unicode,
 * and containers nested at most `maxDepth` deep.
 *
 * It answers `true` only when sure; `false` means "not sure", never "not
 * canonical": the caller then serialises the parsed value, which decides and
 * names the problem (so errors are exactly the serialiser's). Rare shapes it
 * leaves to the serialiser: escapes other than the seven short ones and
 * \u00XX control characters, any surrogate code unit, member names with an
 * escape, integers of 16 digits or more. It builds no strings: on the entry
 * hot path it costs a fraction of a serialisation.
 */
export function isCanonicalJsonText (text: string, maxDepth: number): boolean {
  // Per open container: 1 = object, 0 = array; for objects, where the last member name started and ended.
  const kinds: number[] = []
  const nameStart: number[] = []
  const nameEnd: number[] = []
  let depth = 0
  let expectName = false
  const length = text.length
  let i = 0
  while (i < length) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { // "
      const start = i + 1
      const end = stringEnd(text, start)
      if (end < 0) return false
      if (expectName) {
        if (lastStringEscaped) return false // a name with an escape: left to the serialiser
        const d = depth - 1
        if (nameEnd[d]! >= 0 && !ascending(text, nameStart[d]!, nameEnd[d]!, start, end)) return false
        nameStart[d] = start
        nameEnd[d] = end
        expectName = false
      }
      i = end + 1
      continue
    }
    if (c === 0x7b || c === 0x5b) { // { [
      depth++
      if (depth > maxDepth) return false
      kinds[depth - 1] = c === 0x7b ? 1 : 0
      nameEnd[depth - 1] = -1
      expectName = c === 0x7b
      i++
      continue
    }
    if (c === 0x7d || c === 0x5d) { // } ]
      depth--
      expectName = false
      i++
      continue
    }
    if (c === 0x2c) { // ,
      expectName = kinds[depth - 1] === 1
      i++
      continue
    }
    if (c === 0x3a) { // :
      i++
      continue
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) { // - or a digit
      let j = c === 0x2d ? i + 1 : i
      const first = j
      while (j < length) {
        const d = text.charCodeAt(j)
        if (d < 0x30 || d > 0x39) break
        j++
      }
      const digits = j - first
      if (digits === 0 || digits >= 16) return false
      if (text.charCodeAt(first) === 0x30 && (digits > 1 || c === 0x2d)) return false // -0 or a leading zero
      if (j < length) {
        const next = text.charCodeAt(j)
        if (next === 0x2e || next === 0x65 || next === 0x45) return false // a fraction or an exponent
      }
      i = j
      continue
    }
    if (c === 0x74 && text.startsWith('true', i)) { i += 4; continue }
    if (c === 0x66 && text.startsWith('false', i)) { i += 5; continue }
    if (c === 0x6e && text.startsWith('null', i)) { i += 4; continue }
    // White space, or anything else.
    return false
  }
  return depth === 0
}

/** Whether the string stringEnd last scanned held an escape. */
let lastStringEscaped = false

/** Characters a string may hold as they are: not a quote, a backslash, a control character or a surrogate code unit. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must stop the run
const PLAIN_RUN = /[^"\\\u0000-\u001f\ud800-\udfff]*/y

/**
 * Where the string whose contents start at `start` ends (the index of its
 * closing quote), or -1 when it holds anything the check leaves to the
 * serialiser. Sets lastStringEscaped.
 */
function stringEnd (text: string, start: number): number {
  // Skip the run of plain characters in one regex step (a quarter of the check's time on
  // entry lines, whose strings are mostly long hex); the loop below decides what stopped it.
  PLAIN_RUN.lastIndex = start
  PLAIN_RUN.test(text)
  let i = PLAIN_RUN.lastIndex
  let escaped = false
  const length = text.length
  while (i < length) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      lastStringEscaped = escaped
      return i
    }
    if (c < 0x20 || (c >= 0xd800 && c <= 0xdfff)) return -1
    if (c === 0x5c) {
      const e = text.charCodeAt(i + 1)
      if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        escaped = true
        i += 2
        continue
      }
      if (e !== 0x75 || !isControlEscape(text, i + 2)) return -1
      escaped = true
      i += 6
      continue
    }
    i++
  }
  return -1
}

/** \u00XX as JSON.stringify writes it: a control character without a short escape, lower-case hex. */
function isControlEscape (text: string, at: number): boolean {
  if (text.charCodeAt(at) !== 0x30 || text.charCodeAt(at + 1) !== 0x30) return false
  const hi = text.charCodeAt(at + 2)
  const lo = text.charCodeAt(at + 3)
  const loValue = lo >= 0x30 && lo <= 0x39 ? lo - 0x30 : lo >= 0x61 && lo <= 0x66 ? lo - 0x61 + 10 : -1
  if (loValue < 0 || (hi !== 0x30 && hi !== 0x31)) return false
  const value = (hi - 0x30) * 16 + loValue
  // \b \t \n \f \r have short escapes.
  return value !== 0x08 && value !== 0x09 && value !== 0x0a && value !== 0x0c && value !== 0x0d
}

/** Whether text[aStart, aEnd) < text[bStart, bEnd) by UTF-16 code units (RFC 8785 member order). */
function ascending (text: string, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  const aLength = aEnd - aStart
  const bLength = bEnd - bStart
  const n = aLength < bLength ? aLength : bLength
  for (let k = 0; k < n; k++) {
    const a = text.charCodeAt(aStart + k)
    const b = text.charCodeAt(bStart + k)
    if (a !== b) return a < b
  }
  return aLength < bLength
}
