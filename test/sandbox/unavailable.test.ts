import { describe, expect, it } from 'vitest'
import { createExecutor, SandboxUnavailableError } from '../../src/sandbox/index.js'

// Its own file: every other bubblewrap test needs bubblewrap and fails loudly without it; this one does not.
describe('without bubblewrap', () => {
  it('says how to install it, or how to opt out', async () => {
    const err = await createExecutor('bubblewrap', { bwrapPath: '/nonexistent/bwrap' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(SandboxUnavailableError)
    expect((err as Error).name).toBe('SandboxUnavailableError')
    expect((err as Error).message).toContain('sudo apt-get install bubblewrap')
    expect((err as Error).message).toContain('sudo dnf install bubblewrap')
    expect((err as Error).message).toContain('--sandbox=none')
  })
})
