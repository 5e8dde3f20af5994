import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * The layers of docs/ARCHITECTURE.md, lowest first. A layer may import only the layers
 * listed for it: a lower layer never imports a higher one.
 */
const ALLOWED: Record<string, string[]> = {
  util: [],
  crypto: ['util'],
  archive: ['util'],
  sandbox: ['util', 'archive'],
  environments: ['util', 'archive', 'sandbox'],
  blobs: ['util', 'crypto'],
  ledger: ['util', 'crypto'],
  gossip: ['util', 'crypto'],
  livelog: ['util', 'crypto'],
  membership: ['util', 'crypto', 'ledger'],
  jobs: ['util', 'crypto', 'ledger', 'membership', 'blobs', 'sandbox', 'archive', 'environments'],
  upstream: ['util', 'crypto', 'archive', 'ledger', 'blobs', 'sandbox', 'jobs'],
  node: ['util', 'crypto', 'archive', 'sandbox', 'environments', 'blobs', 'ledger', 'gossip', 'livelog', 'membership', 'jobs', 'upstream']
}

/** "jobs know entries, not libp2p". */
const FORBIDDEN_PACKAGES: Record<string, RegExp> = {
  membership: /^(libp2p|@libp2p\/|@chainsafe\/|fastify|level)/,
  jobs: /^(libp2p|@libp2p\/|@chainsafe\/|fastify)/,
  ledger: /^fastify/,
  sandbox: /^(libp2p|@libp2p\/|@chainsafe\/|fastify|level)/,
  environments: /^(libp2p|@libp2p\/|@chainsafe\/|fastify|level)/,
  upstream: /^(libp2p|@libp2p\/|@chainsafe\/|fastify|level)/
}

const SRC = resolve(__dirname, '../../src')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : []
  })
}

function imports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)]
    .map((m) => m[1] ?? m[2] ?? '')
}

describe('layers', () => {
  it('every folder under src/ is a known layer', () => {
    const layers = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory())
    expect(layers.filter((l) => !(l in ALLOWED))).toEqual([])
  })

  it('no module imports a higher layer, and jobs never touch libp2p', () => {
    const violations: string[] = []
    for (const file of files(SRC)) {
      const layer = relative(SRC, file).split('/')[0]!
      for (const spec of imports(file)) {
        if (spec.startsWith('.')) {
          const target = relative(SRC, resolve(dirname(file), spec)).split('/')[0]!
          if (target !== layer && !ALLOWED[layer]!.includes(target)) violations.push(`${relative(SRC, file)} imports ${spec} (${layer} → ${target})`)
        } else if (FORBIDDEN_PACKAGES[layer]?.test(spec) === true) {
          violations.push(`${relative(SRC, file)} imports package ${spec}`)
        }
      }
    }
    expect(violations).toEqual([])
  })
})
