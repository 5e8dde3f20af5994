import { execFileSync, spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { BIN } from '../helpers/cluster.js'

/** The machine's own Node.js when it is older than 22 (Debian 12's is 20), else undefined. */
function olderNode (): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim()
      if (Number(/^v(\d+)/.exec(version)?.[1]) < 22) return candidate
    } catch {
      // not installed there
    }
  }
  return undefined
}

const old = olderNode()
if (old === undefined) console.warn('skipping the launcher\'s old-Node test: this machine has no Node.js older than 22 in /usr/bin or /usr/local/bin')

describe('bin/buildhaus-node.js', () => {
  it.skipIf(old === undefined)('run by a Node.js older than 22, says in one sentence to use npx (or Node 22) and exits 1, before loading libp2p', () => {
    const result = spawnSync(old!, [BIN, 'peers'], { encoding: 'utf8', timeout: 20_000 })
    expect(result.status).toBe(1)
    const lines = result.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^buildhaus-node needs Node\.js 22 or later, and this is Node\.js 2\d\.\d+\.\d+: .*npx buildhaus-node/)
    expect(result.stdout).toBe('')
  })
})
