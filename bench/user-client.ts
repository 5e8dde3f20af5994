import { parentPort, workerData } from 'node:worker_threads'

/**
 * One client thread of bench/user.ts's burst: takes the next job number from
 * a counter shared by every client thread (as a thread pool takes the next
 * task), sends `POST /api/jobs` for it, and reports the job id. The threads
 * keep their own keep-alive connections, like Buildbot's anchor's
 * ThreadPoolExecutor clients.
 */
interface ClientData {
  api: string
  /** The node's API token: every change needs it. */
  token: string
  /** Int32Array over a SharedArrayBuffer: [next job number]. */
  counter: SharedArrayBuffer
  total: number
  /** The request body, as JSON; the job's name gets the job number appended. */
  body: { spec: { name: string } & Record<string, unknown> } & Record<string, unknown>
}

const data = workerData as ClientData
const counter = new Int32Array(data.counter)

async function submit (index: number): Promise<{ index: number, id: string, postMs: number }> {
  const body = { ...data.body, spec: { ...data.body.spec, name: `${data.body.spec.name}-${index}` } }
  const started = performance.now()
  const response = await fetch(new URL('/api/jobs', data.api), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${data.token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(120_000)
  })
  const text = await response.text()
  if (response.status !== 201) throw new Error(`POST /api/jobs answered ${response.status}: ${text.slice(0, 300)}`)
  return { index, id: (JSON.parse(text) as { id: string }).id, postMs: performance.now() - started }
}

parentPort!.once('message', () => {
  void (async () => {
    try {
      while (true) {
        const index = Atomics.add(counter, 0, 1)
        if (index >= data.total) break
        parentPort!.postMessage({ type: 'submitted', ...(await submit(index)) })
      }
      parentPort!.postMessage({ type: 'done' })
    } catch (err) {
      parentPort!.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) })
    }
  })()
})
parentPort!.postMessage({ type: 'ready' })
