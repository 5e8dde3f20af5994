const HEX = /^[0-9a-f]*$/

/** Lower-case hex of bytes. */
export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Bytes of a lower-case hex string; throws on anything else (odd length, upper case, stray characters). */
export function fromHex (hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !HEX.test(hex)) throw new TypeError('expected lower-case hex with an even number of digits')
  return new Uint8Array(Buffer.from(hex, 'hex'))
}

export function isHex (value: string, bytes: number): boolean {
  return value.length === bytes * 2 && HEX.test(value)
}
