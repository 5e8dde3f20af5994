import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'

type Teardown = () => unknown

/**
 * Per-test scratch space with ordered teardown, in the manner of hypercore's
 * test helpers: register cleanups as you create things; after the test they
 * run in reverse order (stop nodes before deleting their homes), each one
 * even if an earlier one failed.
 */
export function useTeardown (): (fn: Teardown) => void {
  const stack: Teardown[] = []
  afterEach(async () => {
    const errors: unknown[] = []
    while (stack.length > 0) {
      const fn = stack.pop()!
      try {
        await fn()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) throw errors[0]
  })
  return (fn) => { stack.push(fn) }
}

/** Make a fresh temporary directory, removed at teardown. */
export async function tempDir (teardown: (fn: Teardown) => void, prefix = 'buildhaus-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}
