import canonicalize from 'canonicalize'
import { InvalidInputError, describeError } from './errors.js'

/**
 * RFC 8785 (JSON Canonicalization Scheme) serialisation. buildhaus forbids
 * non-integer numbers in anything it signs, so the JCS number rules reduce to
 * plain integer formatting and an independent verifier needs no float code.
 */
export function canonicalJson (value: unknown): string {
  assertNoFloats(value, '$')
  let text: string | undefined
  try {
    text = canonicalize(value)
  } catch (err) {
    throw new InvalidInputError(`value cannot be canonicalised: ${describeError(err)}`)
  }
  if (text === undefined) throw new InvalidInputError('value cannot be represented as JSON')
  return text
}

function assertNoFloats (value: unknown, path: string): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new InvalidInputError(`${path} is ${value}: only integers between -(2^53-1) and 2^53-1 may be signed`)
    return
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => { assertNoFloats(item, `${path}[${i}]`) })
    return
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) assertNoFloats(item, `${path}.${key}`)
  }
}
