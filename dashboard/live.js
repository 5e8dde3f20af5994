// @ts-check
// Live updates: the node's server-sent events (GET /api/events). EventSource
// reconnects by itself after a dropped connection; events sent while it was
// away are lost, so the page reloads its data after every reconnect. A
// refusal (the node serves too many streams) closes the source for good:
// try again later ourselves.

/** @typedef {import('./types.js').JobSummary} JobSummary */

const RETRY_CLOSED_MS = 5_000

/**
 * @typedef {object} LiveHandlers
 * @property {(summary: JobSummary) => void} job a job changed (its full summary)
 * @property {(data: { count?: number } | undefined) => void} peers the membership changed
 * @property {(data: { author?: string, seq?: number } | undefined) => void} fork a key was caught forking
 * @property {(state: 'live' | 'reconnecting' | 'offline') => void} status
 * @property {() => void} resync events may have been missed: reload
 */

/**
 * @param {LiveHandlers} handlers
 * @returns {() => void} closes the stream
 */
export function connectLive (handlers) {
  /** @type {EventSource | undefined} */
  let source
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retry
  let wasDown = false
  let stopped = false

  /** @param {MessageEvent} event */
  const parse = (event) => {
    try {
      return JSON.parse(event.data)
    } catch {
      return undefined
    }
  }

  function open () {
    const events = new EventSource('/api/events')
    source = events
    events.addEventListener('open', () => {
      handlers.status('live')
      if (wasDown) {
        wasDown = false
        handlers.resync()
      }
    })
    events.addEventListener('error', () => {
      wasDown = true
      if (events.readyState === EventSource.CLOSED) {
        handlers.status('offline')
        if (!stopped) retry = setTimeout(open, RETRY_CLOSED_MS)
      } else {
        handlers.status('reconnecting')
      }
    })
    events.addEventListener('job', (event) => {
      const data = parse(event)
      if (data?.id !== undefined) handlers.job(data)
    })
    events.addEventListener('peers', (event) => { handlers.peers(parse(event)) })
    events.addEventListener('fork', (event) => { handlers.fork(parse(event)) })
  }

  open()
  return () => {
    stopped = true
    clearTimeout(retry)
    source?.close()
  }
}
