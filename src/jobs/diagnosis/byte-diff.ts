import { createHash } from 'node:crypto'
import { open, type FileHandle } from 'node:fs/promises'
import { MAX_REGIONS_SHOWN, MAX_ROWS_PER_REGION, REGION_MERGE_GAP } from './constants.js'
import type { Deadline } from './deadline.js'
import { hexDumpPair, hexOffset, type ReportWriter } from './report.js'

const BLOCK_BYTES = 256 * 1024

/** A run of differing bytes (equal bytes up to REGION_MERGE_GAP apart are merged). */
export interface Region {
  offset: number
  length: number
  /** The region is the longer file's extra bytes past the shorter one's end. */
  tail?: 'A' | 'B'
}

export interface ByteComparison {
  sizeA: number
  sizeB: number
  sha256A: string
  sha256B: string
  /** The first MAX_REGIONS_SHOWN regions, in file order. */
  regions: Region[]
  /** Every region, counted. */
  regionCount: number
  firstOffset: number | undefined
  /** False when the deadline stopped the scan (hashes are then of the bytes read). */
  complete: boolean
  /** Bytes of each file read (all of them when complete). */
  scanned: number
}

/** Read two files side by side once: their sizes, sha256s and where they differ. */
export async function compareBytes (pathA: string, pathB: string, deadline: Deadline): Promise<ByteComparison> {
  const [a, b] = await Promise.all([open(pathA, 'r'), open(pathB, 'r')])
  try {
    const [sizeA, sizeB] = [(await a.stat()).size, (await b.stat()).size]
    const hashA = createHash('sha256')
    const hashB = createHash('sha256')
    const common = Math.min(sizeA, sizeB)
    const regions: Region[] = []
    let regionCount = 0
    let current: Region | undefined
    const close = (): void => {
      if (current === undefined) return
      regionCount++
      if (regions.length < MAX_REGIONS_SHOWN) regions.push(current)
      current = undefined
    }
    const bufA = Buffer.allocUnsafe(BLOCK_BYTES)
    const bufB = Buffer.allocUnsafe(BLOCK_BYTES)
    let offset = 0
    let complete = true
    while (offset < Math.max(sizeA, sizeB)) {
      if (deadline.expired) {
        complete = false
        break
      }
      const [readA, readB] = await Promise.all([readAt(a, bufA, offset), readAt(b, bufB, offset)])
      if (readA === 0 && readB === 0) break
      const blockA = bufA.subarray(0, readA)
      const blockB = bufB.subarray(0, readB)
      hashA.update(blockA)
      hashB.update(blockB)
      const both = Math.min(readA, readB, Math.max(0, common - offset))
      if (both > 0 && !blockA.subarray(0, both).equals(blockB.subarray(0, both))) {
        for (let i = 0; i < both; i++) {
          if (blockA[i] === blockB[i]) continue
          const at = offset + i
          if (current !== undefined && at - (current.offset + current.length) <= REGION_MERGE_GAP) {
            current.length = at + 1 - current.offset
          } else {
            close()
            current = { offset: at, length: 1 }
          }
        }
      }
      offset += Math.max(readA, readB)
    }
    close()
    if (complete && sizeA !== sizeB) {
      current = { offset: common, length: Math.abs(sizeA - sizeB), tail: sizeA > sizeB ? 'A' : 'B' }
      close()
    }
    const firstOffset = regions[0]?.offset
    return { sizeA, sizeB, sha256A: hashA.digest('hex'), sha256B: hashB.digest('hex'), regions, regionCount, firstOffset, complete, scanned: offset }
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

/** Hex dumps of the first `maxRegions` differing regions, A above B, differing bytes marked. */
export async function writeRegions (report: ReportWriter, pathA: string, pathB: string, comparison: ByteComparison, maxRegions = MAX_REGIONS_SHOWN): Promise<void> {
  const shown = comparison.regions.slice(0, maxRegions)
  if (shown.length === 0) return
  const [a, b] = await Promise.all([open(pathA, 'r'), open(pathB, 'r')])
  try {
    for (const [index, region] of shown.entries()) {
      report.line(describeRegion(index + 1, region))
      const start = Math.max(0, alignDown(region.offset) - 16)
      const wanted = alignDown(region.offset + region.length + 15) + 16 - start
      const span = Math.min(wanted, MAX_ROWS_PER_REGION * 16)
      const [bytesA, bytesB] = await Promise.all([readSpan(a, start, span), readSpan(b, start, span)])
      report.lines(hexDumpPair(start, bytesA, bytesB).map((row) => `  ${row}`))
      if (wanted > span) report.line(`  … the region goes on for ${start + wanted - (start + span)} more bytes`)
      report.line()
    }
    if (comparison.regionCount > shown.length) report.line(`(${comparison.regionCount - shown.length} more differing regions not shown)`)
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

function describeRegion (n: number, region: Region): string {
  if (region.tail !== undefined) {
    return `difference ${n}: ${region.tail} has ${region.length} more bytes, from byte ${hexOffset(region.offset)} (${region.offset})`
  }
  return `difference ${n}: ${region.length} byte${region.length === 1 ? '' : 's'} at ${hexOffset(region.offset)} (${region.offset})`
}

function alignDown (offset: number): number {
  return offset - (offset % 16)
}

async function readAt (handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let total = 0
  while (total < buffer.byteLength) {
    const { bytesRead } = await handle.read(buffer, total, buffer.byteLength - total, position + total)
    if (bytesRead === 0) break
    total += bytesRead
  }
  return total
}

async function readSpan (handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length)
  const read = await readAt(handle, buffer, position)
  return buffer.subarray(0, read)
}
