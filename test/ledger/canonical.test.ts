import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalJson } from '../../src/util/canonical-json.js'
import { canonicalJsonOfParsed } from '../../src/util/canonical-json-parsed.js'
import { isCanonicalJsonText } from '../../src/util/canonical-json-text.js'

const jsonData = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: 'grapheme-ascii' }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'binary' }), tie('value'), { maxKeys: 5 })
  )
})).value

describe('canonical JSON of parsed data (the entry hot path)', () => {
  it('matches the reference canonicalJson byte for byte', () => {
    fc.assert(fc.property(jsonData, (value) => {
      const parsed: unknown = JSON.parse(JSON.stringify(value))
      expect(canonicalJsonOfParsed(parsed, 64)).toBe(canonicalJson(parsed))
    }), { numRuns: 2000 })
  })

  it('refuses floats, lone surrogates and excessive depth', () => {
    expect(() => canonicalJsonOfParsed(JSON.parse('{"a":1.5}'), 8)).toThrow(/integer/)
    expect(() => canonicalJsonOfParsed(JSON.parse('{"a":1e300}'), 8)).toThrow(/integer/)
    expect(() => canonicalJsonOfParsed(JSON.parse('["\\ud800"]'), 8)).toThrow(/surrogate/)
    expect(() => canonicalJsonOfParsed(JSON.parse('{"\\udc00":1}'), 8)).toThrow(/surrogate/)
    expect(() => canonicalJsonOfParsed(JSON.parse('[[[1]]]'), 2)).toThrow(/deeper/)
    expect(canonicalJsonOfParsed(JSON.parse('[[[1]]]'), 3)).toBe('[[[1]]]')
    expect(canonicalJsonOfParsed(JSON.parse('-0'), 1)).toBe('0')
  })
})

describe('the canonical-text check (the entry hot path)', () => {
  const depth = 6
  const serialised = (text: string): string | undefined => {
    try {
      return canonicalJsonOfParsed(JSON.parse(text), depth)
    } catch {
      return undefined
    }
  }
  /** Texts of parsed data: canonical, pretty-printed, in insertion order, with floats and escapes. */
  const texts = fc.oneof(
    jsonData.map((v) => canonicalJson(JSON.parse(JSON.stringify(v)))),
    jsonData.map((v) => JSON.stringify(v)),
    jsonData.map((v) => JSON.stringify(v, null, 1)),
    fc.tuple(jsonData, fc.double()).map(([v, d]) => JSON.stringify([v, d])),
    fc.tuple(jsonData, fc.integer({ min: 0, max: 200 }), fc.string({ unit: 'binary', maxLength: 3 })).map(([v, at, insert]) => {
      const text = canonicalJson(JSON.parse(JSON.stringify(v)))
      const cut = Math.min(at, text.length)
      return text.slice(0, cut) + insert + text.slice(cut)
    })
  )

  it('says yes only where the serialiser gives back the same text', () => {
    fc.assert(fc.property(texts, (text) => {
      let valid = true
      try { JSON.parse(text) } catch { valid = false }
      fc.pre(valid)
      if (isCanonicalJsonText(text, depth)) expect(serialised(text)).toBe(text)
    }), { numRuns: 5000 })
  })

  it('says yes to the canonical form of ordinary data', () => {
    fc.assert(fc.property(jsonData, (value) => {
      const text = canonicalJson(JSON.parse(JSON.stringify(value)))
      // Escaped member names, surrogates and long integers are left to the serialiser.
      fc.pre(!/\\|[\ud800-\udfff]/.test(text) && !/\d{16}/.test(text) && serialised(text) === text)
      expect(isCanonicalJsonText(text, depth)).toBe(true)
    }), { numRuns: 2000 })
  })

  it('leaves every doubtful form to the serialiser', () => {
    for (const text of ['{"b":1,"a":2}', '{"a":1,"a":1}', '{"a": 1}', '[1.5]', '[1e3]', '[-0]', '[9007199254740992]', '["\\ud800"]', '["\\u0041"]',
      '["\\u000a"]', '["\\/"]', '{"\\u0061":1}', '[[[1]]]', ' {}', '{"9":2,"10":1}']) {
      expect(isCanonicalJsonText(text, 2), text).toBe(false)
    }
    // Members in code-unit order ("10" before "9"), though JSON.parse lists integer-like names first.
    for (const text of ['{}', '[]', '{"10":1,"9":2}', '{"a":[1,-2,true,false,null,"x\\n\\u001f\\"\\\\"],"b":{"c":{}}}', '[[1]]']) {
      expect(isCanonicalJsonText(text, 3), text).toBe(serialised(text) === text)
    }
  })
})
