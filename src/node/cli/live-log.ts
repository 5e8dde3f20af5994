import type { NodeClient } from '../client.js'
import { short } from './job-format.js'

/** One event of GET /api/jobs/:id/live. */
export type LiveLogEvent =
  | { event: 'log', platform: string, builder: string, offset: number, text: string }
  | { event: 'end', platform: string, builder: string, note?: string }
  | { event: 'done', verdict: string }

/** The server-sent events of a job's live log, parsed, until the server ends the stream or `signal` aborts. */
export async function * liveLogEvents (client: NodeClient, id: string, options: { platform?: string, signal: AbortSignal }): AsyncGenerator<LiveLogEvent> {
  const query = options.platform !== undefined ? `?platform=${encodeURIComponent(options.platform)}` : ''
  let name = ''
  for await (const line of client.stream(`/api/jobs/${id}/live${query}`, { signal: options.signal })) {
    if (line.startsWith('event: ')) name = line.slice(7)
    else if (line.startsWith('data: ') && (name === 'log' || name === 'end' || name === 'done')) {
      try {
        yield { event: name, ...JSON.parse(line.slice(6)) } as LiveLogEvent
      } catch {}
    }
  }
}

/**
 * Print live log events as lines, each prefixed with its platform and
 * builder when the job has more than one build (partial lines wait for
 * their end). Returns a function that prints what is left.
 */
export interface LiveLogPrinter {
  print (event: LiveLogEvent): void
  flush (): void
  /** Characters of this build's log printed so far (0: none). */
  printed (platform: string, builder: string): number
  /** Whether its run's end was seen (all of its live log printed). */
  ended (platform: string, builder: string): boolean
}

export function liveLogPrinter (write: (text: string) => void): LiveLogPrinter {
  const partial = new Map<string, string>()
  const seen = new Map<string, number>()
  const ends = new Set<string>()
  const prefix = (platform: string, builder: string): string => `${platform} ${short(builder)} | `
  const emit = (key: string, platform: string, builder: string, text: string): void => {
    const lines = ((partial.get(key) ?? '') + text).split('\n')
    partial.set(key, lines.pop()!)
    for (const line of lines) write(`${prefix(platform, builder)}${line}\n`)
  }
  return {
    print (event) {
      if (event.event === 'done') return
      const key = `${event.platform}/${event.builder}`
      if (event.event === 'log') {
        // A reconnect may repeat text: skip what was printed already.
        const upTo = seen.get(key) ?? 0
        const end = event.offset + event.text.length
        if (end <= upTo) return
        const text = event.offset < upTo ? event.text.slice(upTo - event.offset) : event.text
        seen.set(key, end)
        emit(key, event.platform, event.builder, text)
        return
      }
      if (event.note === undefined) ends.add(key)
      const rest = partial.get(key) ?? ''
      if (rest !== '') write(`${prefix(event.platform, event.builder)}${rest}\n`)
      partial.delete(key)
      write(`${prefix(event.platform, event.builder)}[${event.note !== undefined ? `live log ended: ${event.note}` : 'run ended'}]\n`)
    },
    printed (platform, builder) {
      return seen.get(`${platform}/${builder}`) ?? 0
    },
    ended (platform, builder) {
      return ends.has(`${platform}/${builder}`)
    },
    flush () {
      for (const [key, rest] of partial) {
        const [platform = '', builder = ''] = key.split('/')
        if (rest !== '') write(`${prefix(platform, builder)}${rest}\n`)
      }
      partial.clear()
    }
  }
}
