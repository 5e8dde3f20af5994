import { describe, expect, it } from 'vitest'
import { BoundedLog } from '../../src/sandbox/log-buffer.js'

describe('BoundedLog', () => {
  it('keeps everything under its bound', () => {
    const log = new BoundedLog(100)
    log.append(Buffer.from('hello '))
    log.append(Buffer.from('world\n'))
    expect(log.finish()).toEqual({ log: Buffer.from('hello world\n'), truncated: false })
    expect(log.atLineStart).toBe(true)
  })

  it('keeps the head and the tail, and says how much it dropped', () => {
    const log = new BoundedLog(20)
    for (let i = 0; i < 1000; i++) log.append(Buffer.from(`${i % 10}`))
    const { log: bytes, truncated } = log.finish()
    expect(truncated).toBe(true)
    expect(bytes.toString()).toBe('0123456789\n[… 980 bytes truncated …]\n0123456789')
    expect(log.size).toBe(1000)
  })

  it('handles chunks larger than the whole bound', () => {
    const log = new BoundedLog(10)
    log.append(Buffer.from('a'.repeat(50) + 'b'.repeat(50)))
    log.append(Buffer.from('tail!'))
    expect(log.finish().log.toString()).toBe('aaaaa\n[… 95 bytes truncated …]\ntail!')
  })
})
