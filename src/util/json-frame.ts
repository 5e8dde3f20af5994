import { InvalidInputError } from './errors.js'

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * One length-delimited protocol frame as a JSON object, refused with an
 * InvalidInputError that names the frame (`what`) when it is over `maxBytes`,
 * not UTF-8 JSON, or not an object. The caller checks the members.
 */
export function parseJsonFrame (bytes: Uint8Array, maxBytes: number, what: string): Record<string, unknown> {
  if (bytes.byteLength > maxBytes) throw new InvalidInputError(`the ${what} is ${bytes.byteLength} bytes, more than the ${maxBytes} allowed`)
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new InvalidInputError(`the ${what} is not UTF-8 JSON`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidInputError(`the ${what} is not a JSON object`)
  return value as Record<string, unknown>
}
