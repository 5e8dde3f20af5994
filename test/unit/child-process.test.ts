import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * Every process the node starts goes through a spawn helper, which closed
 * the node's LevelDB descriptors (they have no close-on-exec) before it
 * forks anything: steps and diffoscope through their executors' helpers,
 * everything else through src/sandbox/host-process.ts
 * (test/hostile/tool-descriptors.test.ts). Node's child_process is
 * therefore used in the helper's two modules only: a spawn anywhere else
 * would hand the ledger, open for writing, to whatever it starts.
 */
const SANCTIONED = ['sandbox/spawn-helper.ts', 'sandbox/spawn-helper-main.ts']

const SRC = resolve(__dirname, '../../src')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : []
  })
}

describe('child processes', () => {
  it('are started only by the spawn helper: no other module of src/ loads child_process', () => {
    const found = files(SRC)
      .filter((file) => /['"`](node:)?child_process['"`]/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file))
    expect(found.filter((file) => !SANCTIONED.includes(file))).toEqual([])
    // The check itself still sees the sanctioned uses (a rename would make it vacuous).
    expect(found.sort()).toEqual([...SANCTIONED].sort())
  })
})
