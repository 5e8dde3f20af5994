import { describe, expect, it } from 'vitest'
import { DeadlineError } from '../../src/util/errors.js'
import { delay, waitFor } from '../../src/util/wait.js'

describe('delay', () => {
  it('resolves after its time', async () => {
    const start = performance.now()
    await delay(30)
    expect(performance.now() - start).toBeGreaterThanOrEqual(25)
  })

  it('rejects with the signal\'s own reason when aborted, also when it was aborted before the call', async () => {
    const reason = new Error('stopping')
    const controller = new AbortController()
    const pending = delay(60_000, controller.signal)
    controller.abort(reason)
    await expect(pending).rejects.toBe(reason)
    await expect(delay(60_000, AbortSignal.abort(reason))).rejects.toBe(reason)
  })
})

describe('waitFor', () => {
  it('returns the condition\'s value, or fails with a DeadlineError naming what it waited for', async () => {
    let calls = 0
    await expect(waitFor(() => ++calls >= 3 && 'ready', { timeoutMs: 5_000, intervalMs: 5 })).resolves.toBe('ready')
    const late = await waitFor(() => false, { timeoutMs: 50, intervalMs: 5, what: 'the moon' }).catch((err: unknown) => err)
    expect(late).toBeInstanceOf(DeadlineError)
    expect((late as Error).message).toMatch(/waiting for the moon/)
  })

  it('stops at once with the reason when its signal aborts', async () => {
    const reason = new Error('Ctrl-C')
    const controller = new AbortController()
    const waiting = waitFor(() => false, { timeoutMs: 60_000, intervalMs: 10_000, signal: controller.signal })
    setTimeout(() => { controller.abort(reason) }, 20)
    await expect(waiting).rejects.toBe(reason)
  })
})
