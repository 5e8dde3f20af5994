import { existsSync, readFileSync, statSync } from 'node:fs'
import { SourceMap, type SourceMapPayload } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A map larger than this is not read (the node's largest is ~3 MB). */
const MAX_MAP_BYTES = 64 * 1024 * 1024

/** `    at NAME (LOCATION:LINE:COLUMN)` or `    at LOCATION:LINE:COLUMN`, LOCATION a .js file (a path or a file: URL). */
const FRAME = /^(\s+at )(?:(.*?) \()?((?:file:\/\/)?\/[^()]*?\.js):(\d+):(\d+)(\)?)$/

interface Frame {
  prefix: string
  name: string | undefined
  file: string
  line: number
  column: number
}

/**
 * A stack trace in the sources' terms: each frame in a bundled file with a
 * source map beside it (`X.js.map`, written by scripts/bundle.js) names the
 * TypeScript file, line and column it came from, and the function's own name
 * where the map has it. Node does this itself only under
 * `--enable-source-maps`, which holds every map in memory for the life of
 * the process (~17 MB for an idle node): here a map is read only when an
 * unexpected error is printed. Frames without a map, or that the map does
 * not cover, are left as they are; a map that cannot be read leaves its
 * frames alone.
 */
export function sourceStack (stack: string): string {
  const maps = new Map<string, SourceMap | undefined>()
  const lines = stack.split('\n')
  const frames = lines.map(parseFrame)
  return lines.map((text, i) => {
    const frame = frames[i]
    if (frame === undefined) return text
    const map = mapFor(frame.file, maps)
    const origin = map?.findOrigin(frame.line, frame.column)
    if (origin === undefined || !('fileName' in origin)) return text
    const file = resolve(dirname(frame.file), origin.fileName)
    // The function's name is the name its caller called it by: the name at the caller's position.
    const caller = frames[i + 1]
    const callerOrigin = caller === undefined ? undefined : mapFor(caller.file, maps)?.findOrigin(caller.line, caller.column)
    const name = callerOrigin !== undefined && 'name' in callerOrigin && callerOrigin.name !== undefined && callerOrigin.name !== '' ? callerOrigin.name : frame.name
    const location = `${file}:${origin.lineNumber}:${origin.columnNumber}`
    return name === undefined ? `${frame.prefix}${location}` : `${frame.prefix}${name} (${location})`
  }).join('\n')
}

function parseFrame (text: string): Frame | undefined {
  const match = FRAME.exec(text)
  if (match === null) return undefined
  const [, prefix, name, location, line, column] = match
  const file = location!.startsWith('file://') ? fileURLToPath(location!) : location!
  return { prefix: prefix!, name, file, line: Number(line), column: Number(column) }
}

function mapFor (file: string, maps: Map<string, SourceMap | undefined>): SourceMap | undefined {
  if (maps.has(file)) return maps.get(file)
  let map: SourceMap | undefined
  try {
    const path = `${file}.map`
    if (existsSync(path) && statSync(path).size <= MAX_MAP_BYTES) map = new SourceMap(JSON.parse(readFileSync(path, 'utf8')) as SourceMapPayload)
  } catch {
    // unreadable or not a map: the frames stay as they are
  }
  maps.set(file, map)
  return map
}
