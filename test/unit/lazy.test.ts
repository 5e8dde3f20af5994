import { describe, expect, it } from 'vitest'
import { lazily } from '../../src/util/lazy.js'

describe('lazily', () => {
  it('loads a module at its first use, once, and shares it', async () => {
    let loads = 0
    const load = lazily('a part', async () => { loads++; return await import('node:path') })
    expect(loads).toBe(0)
    const [a, b] = await Promise.all([load(), load()])
    expect(a.join('x', 'y')).toBe('x/y')
    expect(b).toBe(a)
    expect(await load()).toBe(a)
    expect(loads).toBe(1)
  })

  it('says which part could not be loaded, at the point of use, and tries again on the next call', async () => {
    let attempts = 0
    const load = lazily('the thing fetcher', async () => {
      attempts++
      // A module missing from the installation, as after a broken install.
      return await import(['.', 'missing-part.js'].join('/'))
    })
    await expect(load()).rejects.toMatchObject({ name: 'PartUnavailableError', message: expect.stringMatching(/^buildhaus could not load the thing fetcher \(.*missing-part\.js.*\): its installation is incomplete; reinstall it/) })
    await expect(load()).rejects.toMatchObject({ name: 'PartUnavailableError' })
    expect(attempts).toBe(2)
  })
})
