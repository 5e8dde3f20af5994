// Live updates: the node's server-sent events (GET /api/events). EventSource
// reconnects by itself after a dropped connection; events sent while it was
// away are lost, so the page reloads its data after every reconnect. A
// refusal (the node serves too many streams) closes the source for good:
// try again later ourselves.

const RETRY_CLOSED_MS = 5_000

/**
 * handlers: { job(summary), peers(data), fork(data), status('live'|'reconnecting'|'offline'), resync() }
 * Returns a function that closes the stream.
 */
export function connectLive (handlers) {
  let source
  let retry
  let wasDown = false
  let stopped = false

  const parse = (event) => {
    try {
      return JSON.parse(event.data)
    } catch {
      return undefined
    }
  }

  function open () {
    source = new EventSource('/api/events')
    source.addEventListener('open', () => {
      handlers.status('live')
      if (wasDown) {
        wasDown = false
        handlers.resync()
      }
    })
    source.addEventListener('error', () => {
      wasDown = true
      if (source.readyState === EventSource.CLOSED) {
        handlers.status('offline')
        if (!stopped) retry = setTimeout(open, RETRY_CLOSED_MS)
      } else {
        handlers.status('reconnecting')
      }
    })
    source.addEventListener('job', (event) => {
      const data = parse(event)
      if (data?.id !== undefined) handlers.job(data)
    })
    source.addEventListener('peers', (event) => { handlers.peers(parse(event)) })
    source.addEventListener('fork', (event) => { handlers.fork(parse(event)) })
  }

  open()
  return () => {
    stopped = true
    clearTimeout(retry)
    source?.close()
  }
}
