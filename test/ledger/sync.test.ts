import { describe, expect, it } from 'vitest'
import { useTeardown } from '../helpers/temp-home.js'
import { connect, converged, startNode } from './mesh.js'

describe('ledger sync between real nodes', () => {
  const teardown = useTeardown()

  it('two nodes exchange what the other lacks', async () => {
    const a = await startNode(teardown)
    const b = await startNode(teardown)
    for (let i = 0; i < 50; i++) await a.store.append('note', { text: `a${i}` })
    for (let i = 0; i < 30; i++) await b.store.append('note', { text: `b${i}` })
    await connect(a, b)
    const [ea, eb] = await converged([a, b], 80)
    expect(ea).toEqual(eb)
  })
})
