import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { commands } from '../../src/node/cli/commands/index.js'
import { main } from '../../src/node/cli/main.js'
import { parseCommandLine } from '../../src/node/cli/parse.js'
import { buildNodeConfig, defaultEnvironmentDir, ROOT_ENVIRONMENT_DIR, type JoinFlags } from '../../src/node/config.js'
import { hostShellEntries, writeOciArchive } from '../helpers/oci-image.js'
import { tempDir, useTeardown } from '../helpers/temp-home.js'

/** `join --environment` and the `env` commands, in-process against a real store. */

function joinFlags (...argv: string[]): JoinFlags {
  const parsed = parseCommandLine(['join', ...argv], commands)
  if (!('values' in parsed)) throw new Error('expected a command')
  return parsed.values as unknown as JoinFlags
}

async function cli (...argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    stdout: { write: (chunk: string) => { stdout += chunk; return true } },
    stderr: { write: (chunk: string) => { stderr += chunk; return true } },
    env: {},
    signal: new AbortController().signal
  })
  return { code, stdout, stderr }
}

describe('join --environment', () => {
  it('offers each environment as a platform label too, and keeps a root node\'s environments in the shared cache', () => {
    const config = buildNodeConfig(joinFlags('--platform', 'linux-x64', '--environment', 'debian-12', '--environment', 'debian-13', '--environment', 'debian-12'), { BUILDHAUS_HOME: '/tmp/h' })
    expect(config.environments).toEqual(['debian-12', 'debian-13'])
    expect(config.platforms).toEqual(['linux-x64', 'debian-12', 'debian-13'])
    expect(config.environmentDir).toBe(defaultEnvironmentDir('/tmp/h'))
    expect(defaultEnvironmentDir('/tmp/h')).toBe(process.getuid?.() === 0 ? ROOT_ENVIRONMENT_DIR : '/tmp/h/environments')
    expect(buildNodeConfig({ ...joinFlags(), environmentDir: '/srv/envs', environmentCache: '2048' }, {})).toMatchObject({ environmentDir: '/srv/envs', environmentCacheMb: 2048 })
  })

  it.each([
    [['--environment', 'host'], /every node builds on its host already/],
    [['--environment', 'Debian 12'], /--environment: the environment name "Debian 12" must be lower-case/],
    [['--environment', 'debian-12', '--sandbox', 'none'], /--environment needs the bubblewrap sandbox/]
  ])('refuses join %j', (argv, message) => {
    expect(() => buildNodeConfig(joinFlags(...argv), {})).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(message) }))
  })

  it('refuses an environment cache below 256 MB', () => {
    expect(() => buildNodeConfig({ ...joinFlags(), environmentCache: '10' }, {})).toThrow(/--environment-cache "10" is not a whole number from 256/)
  })
})

describe('the env commands', () => {
  const teardown = useTeardown()

  it('import, list, show (as JSON and as a .buildinfo field), remove and gc an environment', async () => {
    const dir = await tempDir(teardown, 'buildhaus-envs-')
    const image = join(await tempDir(teardown), 'tiny.tar')
    await writeOciArchive(image, [{ entries: [...hostShellEntries(), { type: 'directory', name: 'var/' }, { type: 'directory', name: 'var/lib/' }, { type: 'directory', name: 'var/lib/dpkg/' }, { type: 'file', name: 'var/lib/dpkg/status', content: 'Package: dash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.5.12-2\n' }] }])
    const store = ['--environment-dir', dir]

    expect((await cli('env', 'list', ...store)).stdout).toContain('no environments here yet')
    const imported = await cli('env', 'import', 'tiny-1', image, ...store)
    expect(imported.code, imported.stderr).toBe(0)
    expect(imported.stderr).toContain('applying layer 1 of 1')
    const hash = /tiny-1: ([0-9a-f]{64}) \(1 packages/.exec(imported.stdout)?.[1]
    expect(hash).toBeDefined()

    const listed = await cli('env', 'list', ...store)
    expect(listed.stdout).toMatch(new RegExp(`^tiny-1 +${hash!.slice(0, 12)} +1 +\\d+ MB +now +offered by name$`, 'm'))
    const json = JSON.parse((await cli('env', 'list', ...store, '--json')).stdout) as Array<{ hash: string, manifest: { packageCount: number } }>
    expect(json).toMatchObject([{ hash, name: 'tiny-1', manifest: { origin: 'oci', packageCount: 1 } }])

    const shown = await cli('env', 'show', 'tiny-1', ...store)
    expect(JSON.parse(shown.stdout)).toMatchObject({ v: 1, name: 'tiny-1', packages: ['dash (= 0.5.12-2)'] })
    expect((await cli('env', 'show', hash!.slice(0, 10), ...store, '--buildinfo')).stdout).toContain('Installed-Build-Depends:\n dash (= 0.5.12-2)\n')

    expect((await cli('env', 'create', 'no-recipe', ...store)).stderr).toMatch(/no recipe for no-recipe.*env import no-recipe FILE/)
    expect((await cli('env', 'remove', 'nothing', ...store))).toMatchObject({ code: 1, stderr: expect.stringContaining('there is no environment nothing here') })
    expect((await cli('env', 'remove', 'tiny-1', ...store)).stdout).toContain(`removed tiny-1 (${hash!}`)
    expect((await cli('env', 'gc', ...store)).stdout).toMatch(/^0 MB kept, bound 32768 MB$/m)
  })
})
