import { DeadlineError } from './errors.js'

/**
 * Pass items through, failing with DeadlineError when the next one takes
 * longer than `ms` to arrive: a peer that goes silent mid-stream costs at most
 * that long. `what` names the wait in the error.
 */
export async function * eachWithin<T> (source: AsyncIterable<T>, ms: number, what: string): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]()
  try {
    while (true) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new DeadlineError(`no ${what} within ${ms} ms`)) }, ms)
      })
      let result: IteratorResult<T>
      try {
        result = await Promise.race([iterator.next(), timeout])
      } finally {
        clearTimeout(timer)
      }
      if (result.done === true) return
      yield result.value
    }
  } finally {
    // Ends the source; a source stuck in next() is ended by whoever aborts its stream.
    void iterator.return?.()?.catch(() => {})
  }
}
