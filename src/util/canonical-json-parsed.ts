import { InvalidInputError } from './errors.js'

/**
 * RFC 8785 canonical JSON of a value that came out of JSON.parse (plain
 * objects, arrays, strings, numbers, booleans, null — nothing else), in one
 * pass that also enforces what buildhaus signs: integers only (within
 * ±(2^53-1)), well-formed Unicode strings and member names, and nesting at
 * most `maxDepth` containers deep. Same output as canonicalJson() for such
 * values (a property test checks it), about twice as fast: it is on the hot
 * path of every entry received.
 */
export function canonicalJsonOfParsed (value: unknown, maxDepth: number): string {
  return serialize(value, 1, maxDepth)
}

function serialize (value: unknown, depth: number, maxDepth: number): string {
  switch (typeof value) {
    case 'string':
      if (!(value as unknown as { isWellFormed: () => boolean }).isWellFormed()) throw new InvalidInputError('a string is not well-formed Unicode (lone surrogate)')
      return JSON.stringify(value)
    case 'number':
      if (!Number.isSafeInteger(value)) throw new InvalidInputError(`${value} is not an integer between -(2^53-1) and 2^53-1`)
      return String(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object': {
      if (value === null) return 'null'
      if (depth > maxDepth) throw new InvalidInputError(`nested deeper than ${maxDepth} levels`)
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ','
          out += serialize(value[i], depth + 1, maxDepth)
        }
        return out + ']'
      }
      // Default sort compares UTF-16 code units: exactly RFC 8785's member order.
      const names = Object.keys(value).sort()
      let out = '{'
      for (let i = 0; i < names.length; i++) {
        const name = names[i]!
        if (!(name as unknown as { isWellFormed: () => boolean }).isWellFormed()) throw new InvalidInputError('a member name is not well-formed Unicode (lone surrogate)')
        if (i > 0) out += ','
        out += JSON.stringify(name) + ':' + serialize((value as Record<string, unknown>)[name], depth + 1, maxDepth)
      }
      return out + '}'
    }
    default:
      throw new InvalidInputError(`a ${typeof value} cannot be represented in JSON`)
  }
}
