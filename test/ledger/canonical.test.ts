import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalJson } from '../../src/util/canonical-json.js'
import { canonicalJsonOfParsed } from '../../src/util/canonical-json-parsed.js'

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
